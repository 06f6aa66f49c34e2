/* excerpts.c - the book's excerpt checker (see excerpts.h for the format).
 *
 * Plain ISO C: files are read whole in binary mode and split into lines that
 * remember where they start and how long their terminator is, so that an
 * update can copy every byte it does not rewrite exactly as it was.
 */
#include "excerpts.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <windows.h>
#endif

/* ---- text: a file read whole and split into lines ---------------------------- */

typedef struct line {
    size_t start; /* offset of its first byte */
    size_t len;   /* content bytes, without "\n" or "\r\n" */
    size_t full;  /* content and terminator */
} line;

typedef struct text {
    char *data;
    size_t size;
    line *lines;
    size_t count;
} text;

static void text_free(text *t)
{
    free(t->data);
    free(t->lines);
    t->data = NULL;
    t->lines = NULL;
    t->size = t->count = 0;
}

/* Returns 0, or -1 with errno as fopen/fread left it (0 when unknown). */
static int text_load(text *t, const char *path)
{
    memset(t, 0, sizeof *t);
    errno = 0;
    FILE *file = fopen(path, "rb");
    if (!file)
        return -1;
    size_t capacity = 4096;
    char *data = malloc(capacity);
    size_t size = 0;
    for (;;) {
        if (!data)
            break;
        if (size == capacity) {
            char *bigger = realloc(data, capacity * 2);
            if (!bigger) {
                free(data);
                data = NULL;
                break;
            }
            data = bigger;
            capacity *= 2;
        }
        size_t got = fread(data + size, 1, capacity - size, file);
        size += got;
        if (got == 0)
            break;
    }
    int saved = data ? errno : ENOMEM;
    int failed = !data || ferror(file);
    fclose(file);
    if (failed) {
        free(data);
        errno = saved;
        return -1;
    }

    size_t count = 1;
    for (size_t i = 0; i < size; i++)
        count += data[i] == '\n';
    line *lines = malloc(count * sizeof *lines);
    if (!lines) {
        free(data);
        errno = ENOMEM;
        return -1;
    }
    size_t n = 0, start = 0;
    for (size_t i = 0; i <= size; i++) {
        if (i < size && data[i] != '\n')
            continue;
        if (i == size && start == size)
            break; /* no partial last line */
        size_t len = i - start;
        if (i < size && len > 0 && data[i - 1] == '\r')
            len--;
        lines[n].start = start;
        lines[n].len = len;
        lines[n].full = (i < size ? i + 1 : i) - start;
        n++;
        start = i + 1;
    }
    t->data = data;
    t->size = size;
    t->lines = lines;
    t->count = n;
    return 0;
}

static const char *line_text(const text *t, size_t index)
{
    return t->data + t->lines[index].start;
}

/* The line's terminator: "\r\n", "\n" or "" (last line). */
static const char *line_ending(const text *t, size_t index)
{
    const line *l = &t->lines[index];
    size_t extra = l->full - l->len;
    return extra == 2 ? "\r\n" : extra == 1 ? "\n" : "";
}

static int lines_equal(const text *a, size_t ia, const text *b, size_t ib)
{
    return a->lines[ia].len == b->lines[ib].len &&
           memcmp(line_text(a, ia), line_text(b, ib), a->lines[ia].len) == 0;
}

/* ---- a growable byte buffer --------------------------------------------------- */

typedef struct buffer {
    char *data;
    size_t len;
    size_t capacity;
    int failed; /* an allocation failed: the content is incomplete */
} buffer;

static void buffer_add(buffer *b, const void *bytes, size_t n)
{
    if (b->failed || n == 0)
        return;
    if (b->len + n > b->capacity) {
        size_t capacity = b->capacity ? b->capacity : 4096;
        while (capacity < b->len + n)
            capacity *= 2;
        char *bigger = realloc(b->data, capacity);
        if (!bigger) {
            b->failed = 1;
            return;
        }
        b->data = bigger;
        b->capacity = capacity;
    }
    memcpy(b->data + b->len, bytes, n);
    b->len += n;
}

static void buffer_add_string(buffer *b, const char *s)
{
    buffer_add(b, s, strlen(s));
}

/* ---- small parsing helpers ------------------------------------------------------ */

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static size_t skip_blanks(const char *s, size_t i, size_t n)
{
    while (i < n && is_blank(s[i]))
        i++;
    return i;
}

static int has_prefix(const char *s, size_t i, size_t n, const char *prefix)
{
    size_t len = strlen(prefix);
    return n - i >= len && memcmp(s + i, prefix, len) == 0;
}

static int is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

static int is_name(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_name_char(s[i]))
            return 0;
    return 1;
}

static char *copy_string(const char *s, size_t n)
{
    char *copy = malloc(n + 1);
    if (copy) {
        memcpy(copy, s, n);
        copy[n] = '\0';
    }
    return copy;
}

/* ---- anchors in source files ---------------------------------------------------- */

typedef enum anchor_kind { NOT_ANCHOR, ANCHOR_BEGIN, ANCHOR_END, ANCHOR_MALFORMED } anchor_kind;

typedef struct anchor_line {
    anchor_kind kind;
    const char *name;
    size_t name_len;
} anchor_line;

/* "/" "* ANCHOR: name *" "/" or "# ANCHOR_END: name", alone on the line. A
 * line that starts like a marker but is not one (two words for a name, a
 * missing comment close) is ANCHOR_MALFORMED: silently copying it into a
 * region would hide the typo. */
static anchor_line parse_anchor_line(const char *s, size_t n)
{
    anchor_line result = {NOT_ANCHOR, NULL, 0};
    size_t i = skip_blanks(s, 0, n);
    int c_comment;
    if (has_prefix(s, i, n, "/*")) {
        c_comment = 1;
        i += 2;
    } else if (has_prefix(s, i, n, "#")) {
        c_comment = 0;
        i += 1;
    } else {
        return result;
    }
    i = skip_blanks(s, i, n);
    anchor_kind kind;
    if (has_prefix(s, i, n, "ANCHOR:")) {
        kind = ANCHOR_BEGIN;
        i += strlen("ANCHOR:");
    } else if (has_prefix(s, i, n, "ANCHOR_END:")) {
        kind = ANCHOR_END;
        i += strlen("ANCHOR_END:");
    } else {
        return result;
    }
    result.kind = ANCHOR_MALFORMED;
    i = skip_blanks(s, i, n);
    size_t name = i;
    while (i < n && is_name_char(s[i]))
        i++;
    size_t name_end = i;
    if (name_end == name)
        return result;
    i = skip_blanks(s, i, n);
    if (c_comment) {
        if (!has_prefix(s, i, n, "*/"))
            return result;
        i = skip_blanks(s, i + 2, n);
    }
    if (i != n)
        return result;
    result.kind = kind;
    result.name = s + name;
    result.name_len = name_end - name;
    return result;
}

/* A source file, read once however many excerpts use it. */
typedef struct source {
    char *path; /* as written in the marker */
    int error;  /* 0, or -1 when it could not be read (message in `why`) */
    char why[256];
    text text;
    struct source *next;
} source;

typedef struct region {
    size_t begin, end; /* line indexes of its two markers */
    size_t *lines;     /* indexes of the region's lines, markers left out */
    size_t count;
} region;

static void region_free(region *r)
{
    free(r->lines);
    r->lines = NULL;
    r->count = 0;
}

/* Finds anchor `name` in `src`. Returns 0, or -1 with a message in `why`. */
static int find_region(const source *src, const char *name, size_t name_len, region *out, char *why,
                       size_t why_size)
{
    const text *t = &src->text;
    size_t begins[2] = {0, 0}, ends[2] = {0, 0};
    size_t begin_count = 0, end_count = 0;
    memset(out, 0, sizeof *out);
    for (size_t k = 0; k < t->count; k++) {
        anchor_line a = parse_anchor_line(line_text(t, k), t->lines[k].len);
        if (a.kind == ANCHOR_MALFORMED) {
            snprintf(why, why_size,
                     "%s:%zu: malformed anchor line (the form is a comment alone on its line: "
                     "ANCHOR: name or ANCHOR_END: name, names made of A-Z a-z 0-9 _ -)",
                     src->path, k + 1);
            return -1;
        }
        if (a.kind == NOT_ANCHOR || a.name_len != name_len || memcmp(a.name, name, name_len))
            continue;
        if (a.kind == ANCHOR_BEGIN) {
            if (begin_count < 2)
                begins[begin_count] = k;
            begin_count++;
        } else {
            if (end_count < 2)
                ends[end_count] = k;
            end_count++;
        }
    }
    int n = (int)name_len;
    if (begin_count == 0 && end_count == 0) {
        snprintf(why, why_size, "%s has no anchor '%.*s' (no ANCHOR: %.*s line)", src->path, n,
                 name, n, name);
        return -1;
    }
    if (begin_count == 0) {
        snprintf(why, why_size, "%s:%zu: ANCHOR_END: %.*s has no ANCHOR: %.*s before it", src->path,
                 ends[0] + 1, n, name, n, name);
        return -1;
    }
    if (begin_count > 1) {
        snprintf(why, why_size, "%s: anchor '%.*s' is defined twice (ANCHOR lines %zu and %zu)",
                 src->path, n, name, begins[0] + 1, begins[1] + 1);
        return -1;
    }
    if (end_count == 0) {
        snprintf(why, why_size, "%s:%zu: ANCHOR: %.*s has no ANCHOR_END: %.*s", src->path,
                 begins[0] + 1, n, name, n, name);
        return -1;
    }
    if (end_count > 1) {
        snprintf(why, why_size, "%s: ANCHOR_END: %.*s appears twice (lines %zu and %zu)", src->path,
                 n, name, ends[0] + 1, ends[1] + 1);
        return -1;
    }
    if (ends[0] < begins[0]) {
        snprintf(why, why_size, "%s:%zu: ANCHOR_END: %.*s comes before its ANCHOR (line %zu)",
                 src->path, ends[0] + 1, n, name, begins[0] + 1);
        return -1;
    }
    out->begin = begins[0];
    out->end = ends[0];
    out->lines = malloc((out->end - out->begin + 1) * sizeof *out->lines);
    if (!out->lines) {
        snprintf(why, why_size, "out of memory");
        return -1;
    }
    for (size_t k = out->begin + 1; k < out->end; k++) {
        anchor_kind kind = parse_anchor_line(line_text(t, k), t->lines[k].len).kind;
        if (kind == NOT_ANCHOR)
            out->lines[out->count++] = k;
    }
    return 0;
}

/* ---- markdown: include markers and fences ---------------------------------------- */

typedef struct include_marker {
    const char *path;
    size_t path_len;
    const char *name;
    size_t name_len;
    const char *why; /* when malformed */
} include_marker;

/* Returns 0 when the line is no include marker, 1 when it is one, -1 when it
 * looks like one but is malformed (m->why says how). */
static int parse_include(const char *s, size_t n, include_marker *m)
{
    size_t i = skip_blanks(s, 0, n);
    if (!has_prefix(s, i, n, "<!--"))
        return 0;
    i = skip_blanks(s, i + 4, n);
    if (!has_prefix(s, i, n, "include"))
        return 0;
    i += strlen("include");
    if (i < n && s[i] != ':' && !is_blank(s[i]))
        return 0; /* "<!-- includes ..." is prose */
    m->why = "expected <!-- include: PATH:ANCHOR -->";
    if (i == n || s[i] != ':')
        return -1;
    i = skip_blanks(s, i + 1, n);
    size_t spec = i, closing = i;
    while (closing < n && !has_prefix(s, closing, n, "-->"))
        closing++;
    if (closing == n)
        return -1;
    if (skip_blanks(s, closing + 3, n) != n) {
        m->why = "the marker must be alone on its line";
        return -1;
    }
    size_t spec_end = closing;
    while (spec_end > spec && is_blank(s[spec_end - 1]))
        spec_end--;
    size_t colon = spec_end;
    while (colon > spec && s[colon - 1] != ':')
        colon--;
    if (colon == spec) {
        m->why = "expected PATH:ANCHOR after 'include:'";
        return -1;
    }
    m->path = s + spec;
    m->path_len = colon - 1 - spec;
    m->name = s + colon;
    m->name_len = spec_end - colon;
    if (!is_name(m->name, m->name_len)) {
        m->why = "the anchor name (after the last ':') must be made of A-Z a-z 0-9 _ -";
        return -1;
    }
    if (m->path_len == 0) {
        m->why = "the path before ':' is empty";
        return -1;
    }
    if (m->path[0] == '/' || m->path[0] == '\\' || (m->path_len > 1 && m->path[1] == ':')) {
        m->why = "the path must be relative to the repository root";
        return -1;
    }
    for (size_t k = 0; k + 1 < m->path_len; k++) {
        int at_start = k == 0 || m->path[k - 1] == '/' || m->path[k - 1] == '\\';
        int at_end = k + 2 == m->path_len || m->path[k + 2] == '/' || m->path[k + 2] == '\\';
        if (at_start && at_end && m->path[k] == '.' && m->path[k + 1] == '.') {
            m->why = "the path must stay inside the repository (no '..')";
            return -1;
        }
    }
    return 1;
}

typedef struct fence {
    char ch;       /* '`' or '~' */
    size_t len;    /* how many */
    size_t indent; /* spaces before it (0-3) */
} fence;

/* An opening code fence, as CommonMark has it: up to three spaces, three or
 * more backticks or tildes, an info string (without backticks after
 * backticks). */
static int parse_fence_open(const char *s, size_t n, fence *f)
{
    size_t i = 0;
    while (i < n && s[i] == ' ')
        i++;
    if (i > 3 || i == n || (s[i] != '`' && s[i] != '~'))
        return 0;
    f->indent = i;
    f->ch = s[i];
    size_t run = i;
    while (run < n && s[run] == f->ch)
        run++;
    f->len = run - i;
    if (f->len < 3)
        return 0;
    if (f->ch == '`' && memchr(s + run, '`', n - run))
        return 0;
    return 1;
}

/* The closing fence of `open`: the same character, at least as many, and
 * nothing but blanks after them. */
static int is_fence_close(const fence *open, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && s[i] == ' ')
        i++;
    if (i > 3)
        return 0;
    size_t run = i;
    while (run < n && s[run] == open->ch)
        run++;
    return run - i >= open->len && skip_blanks(s, run, n) == n;
}

/* ---- line diff --------------------------------------------------------------------- */

typedef enum diff_op { SAME, ONLY_SOURCE, ONLY_PAGE } diff_op;

/* The region's lines against the block's, as an edit script of at most
 * count_a + count_b steps: the common prefix and suffix, and a longest common
 * subsequence in between (the quadratic table is fine for excerpts of a few
 * dozen lines; past a few million cells the middle is shown as replaced). */
static diff_op *diff_lines(const text *a, const size_t *a_lines, size_t count_a, const text *b,
                           size_t b_first, size_t count_b, size_t *ops_count)
{
    diff_op *ops = malloc((count_a + count_b + 1) * sizeof *ops);
    if (!ops)
        return NULL;
    size_t prefix = 0;
    while (prefix < count_a && prefix < count_b &&
           lines_equal(a, a_lines[prefix], b, b_first + prefix))
        prefix++;
    size_t suffix = 0;
    while (suffix < count_a - prefix && suffix < count_b - prefix &&
           lines_equal(a, a_lines[count_a - 1 - suffix], b, b_first + count_b - 1 - suffix))
        suffix++;
    size_t n = count_a - prefix - suffix, m = count_b - prefix - suffix;
    size_t count = 0;
    for (size_t k = 0; k < prefix; k++)
        ops[count++] = SAME;

    uint32_t *table = NULL;
    if (n > 0 && m > 0 && n <= 4000000 / m)
        table = calloc((n + 1) * (m + 1), sizeof *table);
    if (table) {
        /* table[i][j]: length of an LCS of a[i..n) and b[j..m). */
        size_t width = m + 1;
        for (size_t i = n; i-- > 0;)
            for (size_t j = m; j-- > 0;) {
                if (lines_equal(a, a_lines[prefix + i], b, b_first + prefix + j))
                    table[i * width + j] = table[(i + 1) * width + j + 1] + 1;
                else if (table[(i + 1) * width + j] >= table[i * width + j + 1])
                    table[i * width + j] = table[(i + 1) * width + j];
                else
                    table[i * width + j] = table[i * width + j + 1];
            }
        size_t i = 0, j = 0;
        while (i < n || j < m) {
            if (i < n && j < m && lines_equal(a, a_lines[prefix + i], b, b_first + prefix + j)) {
                ops[count++] = SAME;
                i++;
                j++;
            } else if (i < n &&
                       (j == m || table[(i + 1) * width + j] >= table[i * width + j + 1])) {
                ops[count++] = ONLY_SOURCE;
                i++;
            } else {
                ops[count++] = ONLY_PAGE;
                j++;
            }
        }
        free(table);
    } else {
        for (size_t k = 0; k < n; k++)
            ops[count++] = ONLY_SOURCE;
        for (size_t k = 0; k < m; k++)
            ops[count++] = ONLY_PAGE;
    }
    for (size_t k = 0; k < suffix; k++)
        ops[count++] = SAME;
    *ops_count = count;
    return ops;
}

/* ---- one run ----------------------------------------------------------------------- */

enum { DIFF_CONTEXT = 3 };

typedef struct run {
    const evq_excerpts_options *options;
    const char *root;
    source *sources;
    evq_excerpts_stats *stats;
} run;

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 4, 5)))
#endif
static void
report(run *r, const char *page, size_t line_number, const char *format, ...);

static void report(run *r, const char *page, size_t line_number, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    fprintf(r->options->err, "%s:%zu: ", page, line_number);
    vfprintf(r->options->err, format, args);
    fputc('\n', r->options->err);
    va_end(args);
}

static source *get_source(run *r, const char *path, size_t path_len)
{
    for (source *s = r->sources; s; s = s->next)
        if (strlen(s->path) == path_len && memcmp(s->path, path, path_len) == 0)
            return s;
    source *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->path = copy_string(path, path_len);
    size_t root_len = strlen(r->root);
    char *full = malloc(root_len + path_len + 2);
    if (!s->path || !full) {
        free(s->path);
        free(full);
        free(s);
        return NULL;
    }
    memcpy(full, r->root, root_len);
    full[root_len] = '/';
    memcpy(full + root_len + 1, path, path_len);
    full[root_len + 1 + path_len] = '\0';
    if (text_load(&s->text, full) != 0) {
        s->error = -1;
        snprintf(s->why, sizeof s->why, "cannot read source file %s (%s)", full,
                 errno ? strerror(errno) : "read error");
    }
    free(full);
    s->next = r->sources;
    r->sources = s;
    return s;
}

static void print_line(FILE *out, char prefix, const text *t, size_t index)
{
    fputc(prefix, out);
    fwrite(line_text(t, index), 1, t->lines[index].len, out);
    fputc('\n', out);
}

/* A readable diff of a block against its region: where the first difference
 * is, then hunks with a little context, '-' for the source, '+' for the page. */
static void print_difference(run *r, const char *page_name, const text *page, size_t marker,
                             size_t block_first, size_t block_count, const source *src,
                             const region *reg, const include_marker *m)
{
    FILE *err = r->options->err;
    const text *st = &src->text;
    int path_len = (int)m->path_len, name_len = (int)m->name_len;
    report(r, page_name, marker + 1, "excerpt %.*s:%.*s differs from its source", path_len, m->path,
           name_len, m->name);

    size_t ops_count = 0;
    diff_op *ops =
        diff_lines(st, reg->lines, reg->count, page, block_first, block_count, &ops_count);
    if (!ops) {
        fprintf(err, "(out of memory: no diff)\n");
        return;
    }
    /* Line numbers (1-based) of step k's position in the source and the page;
     * past the last line, the ANCHOR_END and the closing fence. */
    size_t *source_at = malloc((ops_count + 1) * sizeof *source_at);
    size_t *page_at = malloc((ops_count + 1) * sizeof *page_at);
    if (!source_at || !page_at) {
        free(ops);
        free(source_at);
        free(page_at);
        fprintf(err, "(out of memory: no diff)\n");
        return;
    }
    size_t i = 0, j = 0;
    for (size_t k = 0; k <= ops_count; k++) {
        source_at[k] = i < reg->count ? reg->lines[i] + 1 : reg->end + 1;
        page_at[k] = block_first + j + 1;
        if (k < ops_count) {
            i += ops[k] != ONLY_PAGE;
            j += ops[k] != ONLY_SOURCE;
        }
    }
    size_t first = 0;
    while (first < ops_count && ops[first] == SAME)
        first++;
    report(r, page_name, page_at[first], "first difference (source %.*s:%zu)", path_len, m->path,
           source_at[first]);
    fprintf(err, "--- %.*s:%.*s (source, lines %zu-%zu)\n", path_len, m->path, name_len, m->name,
            reg->begin + 1, reg->end + 1);
    fprintf(err, "+++ %s (page, block lines %zu-%zu)\n", page_name, block_first,
            block_first + block_count + 1);

    size_t k = first;
    while (k < ops_count) {
        /* A hunk: from DIFF_CONTEXT steps before this change to DIFF_CONTEXT
         * steps after the last change closer than 2 * DIFF_CONTEXT. */
        size_t start = k > DIFF_CONTEXT ? k - DIFF_CONTEXT : 0;
        size_t last_change = k;
        size_t scan = k;
        while (scan < ops_count) {
            if (ops[scan] != SAME)
                last_change = scan;
            else if (scan - last_change > 2 * DIFF_CONTEXT)
                break;
            scan++;
        }
        size_t end = last_change + 1 + DIFF_CONTEXT;
        if (end > ops_count)
            end = ops_count;
        fprintf(err, "@@ source line %zu, page line %zu @@\n", source_at[start], page_at[start]);
        for (size_t s = start; s < end; s++) {
            if (ops[s] == ONLY_PAGE)
                print_line(err, '+', page, page_at[s] - 1);
            else
                print_line(err, ops[s] == SAME ? ' ' : '-', st, source_at[s] - 1);
        }
        k = end;
        while (k < ops_count && ops[k] == SAME)
            k++;
    }
    free(ops);
    free(source_at);
    free(page_at);
}

/* Writes `data` to `path` through a temporary file beside it and a rename, so
 * that a reader (or an interrupted run) never sees half a page. */
static int replace_file(const char *path, const char *data, size_t size, char *why, size_t why_size)
{
    size_t path_len = strlen(path);
    const char suffix[] = ".excerpts-tmp";
    char *temp = malloc(path_len + sizeof suffix);
    if (!temp) {
        snprintf(why, why_size, "out of memory");
        return -1;
    }
    memcpy(temp, path, path_len);
    memcpy(temp + path_len, suffix, sizeof suffix);
    errno = 0;
    FILE *file = fopen(temp, "wb");
    if (!file) {
        snprintf(why, why_size, "cannot create %s (%s)", temp,
                 errno ? strerror(errno) : "open error");
        free(temp);
        return -1;
    }
    int failed = fwrite(data, 1, size, file) != size;
    failed |= fflush(file) != 0;
    int saved = errno;
    failed |= fclose(file) != 0;
    if (failed) {
        snprintf(why, why_size, "cannot write %s (%s)", temp,
                 saved ? strerror(saved) : "write error");
        remove(temp);
        free(temp);
        return -1;
    }
#ifdef _WIN32
    /* ISO rename() will not replace an existing file on Windows. */
    int renamed = MoveFileExA(temp, path, MOVEFILE_REPLACE_EXISTING) != 0;
#else
    int renamed = rename(temp, path) == 0;
#endif
    if (!renamed) {
        snprintf(why, why_size, "cannot rename %s to %s", temp, path);
        remove(temp);
        free(temp);
        return -1;
    }
    free(temp);
    return 0;
}

/* The info string for a block the update adds: from the file's extension. */
static const char *info_for(const char *path, size_t len)
{
    static const struct {
        const char *suffix, *info;
    } known[] = {{".c", "c"},         {".h", "c"},         {"CMakeLists.txt", "cmake"},
                 {".cmake", "cmake"}, {".sh", "sh"},       {"/run", "sh"},
                 {".json", "json"},   {".md", "markdown"}, {".lua", "lua"}};
    for (size_t k = 0; k < sizeof known / sizeof known[0]; k++) {
        size_t n = strlen(known[k].suffix);
        if (len >= n && memcmp(path + len - n, known[k].suffix, n) == 0)
            return known[k].info;
    }
    return "";
}

/* Appends the region as block content, with the page's line ending. */
static void add_region(buffer *out, const source *src, const region *reg, const char *eol)
{
    for (size_t k = 0; k < reg->count; k++) {
        buffer_add(out, line_text(&src->text, reg->lines[k]), src->text.lines[reg->lines[k]].len);
        buffer_add_string(out, eol);
    }
}

/* Whether a region line would end a block opened with `open` early. */
static int region_closes_fence(const source *src, const region *reg, const fence *open)
{
    for (size_t k = 0; k < reg->count; k++)
        if (is_fence_close(open, line_text(&src->text, reg->lines[k]),
                           src->text.lines[reg->lines[k]].len))
            return 1;
    return 0;
}

/* ---- listing captions -------------------------------------------------------------- */

/* A page's number for its listings: "2" for 02-oneshot.md, "A" for
 * appendix-a-atomics.md; 0 when its name says neither. */
static int page_number(const char *page_name, char *out, size_t size)
{
    const char *name = page_name;
    for (const char *c = page_name; *c; c++)
        if (*c == '/' || *c == '\\')
            name = c + 1;
    if (name[0] >= '0' && name[0] <= '9') {
        unsigned long number = strtoul(name, NULL, 10);
        return snprintf(out, size, "%lu", number) > 0;
    }
    if (strncmp(name, "appendix-", 9) == 0 && name[9] != '\0' && name[10] == '-') {
        char letter = name[9];
        if (letter >= 'a' && letter <= 'z')
            letter = (char)(letter - 'a' + 'A');
        return snprintf(out, size, "%c", letter) > 0;
    }
    return 0;
}

static int is_unnumbered(const run *r, const char *page_name)
{
    for (size_t k = 0; k < r->options->unnumbered_count; k++)
        if (strcmp(r->options->unnumbered[k], page_name) == 0)
            return 1;
    return 0;
}

/* The caption an excerpt must have: "**Listing 2.3** — `path`" (UTF-8 dash). */
static void caption_for(char *out, size_t size, const char *number, size_t index,
                        const include_marker *m)
{
    snprintf(out, size, "**Listing %s.%zu** \xe2\x80\x94 `%.*s`", number, index, (int)m->path_len,
             m->path);
}

static void process_page(run *r, const char *page_name)
{
    text page;
    evq_excerpts_stats *stats = r->stats;
    int update = r->options->mode == EVQ_EXCERPTS_UPDATE;
    if (text_load(&page, page_name) != 0) {
        fprintf(r->options->err, "%s: cannot read page (%s)\n", page_name,
                errno ? strerror(errno) : "read error");
        stats->broken++;
        return;
    }
    stats->pages++;
    buffer out = {NULL, 0, 0, 0};
    size_t copied = 0;  /* bytes of the page already in `out` */
    size_t changed = 0; /* blocks rewritten or added in this page */
    size_t captions_changed = 0;
    int in_fence = 0; /* inside a code block that is not an excerpt */
    fence open = {0, 0, 0};
    size_t open_line = 0;
    /* Listing captions: checked unless the page is exempt. */
    char number[16];
    int numbered = r->options->listings && !is_unnumbered(r, page_name);
    int has_number = numbered && page_number(page_name, number, sizeof number);
    size_t listing = 0; /* excerpts seen so far in this page */

    size_t k = 0;
    while (k < page.count) {
        const char *s = line_text(&page, k);
        size_t n = page.lines[k].len;
        if (in_fence) {
            in_fence = !is_fence_close(&open, s, n);
            k++;
            continue;
        }
        if (parse_fence_open(s, n, &open)) {
            in_fence = 1;
            open_line = k;
            k++;
            continue;
        }
        include_marker m;
        int marker = parse_include(s, n, &m);
        if (marker == 0) {
            k++;
            continue;
        }
        stats->excerpts++;
        if (marker < 0) {
            report(r, page_name, k + 1, "malformed include marker: %s", m.why);
            stats->broken++;
            k++;
            continue;
        }
        int path_len = (int)m.path_len, name_len = (int)m.name_len;
        listing++;

        /* Its caption, on the line just above the marker. */
        if (numbered && !has_number) {
            if (listing == 1) {
                report(r, page_name, k + 1,
                       "cannot number this page's listings: its name starts with neither a "
                       "chapter number (02-...) nor appendix-X-; exempt it with --unnumbered");
                stats->broken++;
            }
        } else if (numbered) {
            char caption[1024];
            caption_for(caption, sizeof caption, number, listing, &m);
            size_t caption_len = strlen(caption);
            int above = k > 0;
            const char *prev = above ? line_text(&page, k - 1) : "";
            size_t prev_len = above ? page.lines[k - 1].len : 0;
            int is_caption = above && has_prefix(prev, 0, prev_len, "**Listing ");
            if (!(is_caption && prev_len == caption_len &&
                  memcmp(prev, caption, caption_len) == 0)) {
                stats->captions++;
                if (!update) {
                    if (is_caption)
                        report(r, page_name, k, "listing caption '%.*s' should be '%s'",
                               (int)prev_len, prev, caption);
                    else
                        report(r, page_name, k + 1,
                               "no listing caption above the include marker for %.*s:%.*s "
                               "(expected '%s' on the line above)",
                               path_len, m.path, name_len, m.name, caption);
                } else {
                    /* Replace the wrong caption, or put one above the marker. */
                    const char *eol = line_ending(&page, k);
                    size_t at = is_caption ? page.lines[k - 1].start : page.lines[k].start;
                    buffer_add(&out, page.data + copied, at - copied);
                    buffer_add(&out, caption, caption_len);
                    buffer_add_string(&out, *eol ? eol : "\n");
                    copied = page.lines[k].start;
                    captions_changed++;
                    fprintf(r->options->out, "%s:%zu: %s the caption '%s'\n", page_name, k + 1,
                            is_caption ? "rewrote" : "added", caption);
                }
            }
        }

        /* The block: the very next line opens it. */
        fence block;
        int has_block = k + 1 < page.count &&
                        parse_fence_open(line_text(&page, k + 1), page.lines[k + 1].len, &block);
        size_t closing = k + 2;
        if (has_block) {
            if (block.indent > 0) {
                report(r, page_name, k + 2,
                       "the code block after the include marker for %.*s:%.*s is indented; "
                       "start its fence at the beginning of the line",
                       path_len, m.path, name_len, m.name);
                stats->broken++;
                k++;
                continue;
            }
            while (closing < page.count &&
                   !is_fence_close(&block, line_text(&page, closing), page.lines[closing].len))
                closing++;
            if (closing == page.count) {
                report(r, page_name, k + 2,
                       "the code block for %.*s:%.*s is never closed (no %c%c%c fence after "
                       "this line)",
                       path_len, m.path, name_len, m.name, block.ch, block.ch, block.ch);
                stats->broken++;
                break; /* the rest of the page is inside the block */
            }
        }

        source *src = get_source(r, m.path, m.path_len);
        region reg = {0, 0, NULL, 0};
        char why[512];
        if (!src) {
            report(r, page_name, k + 1, "out of memory");
            stats->broken++;
            k = has_block ? closing + 1 : k + 1;
            continue;
        }
        if (src->error || find_region(src, m.name, m.name_len, &reg, why, sizeof why) != 0) {
            report(r, page_name, k + 1, "include %.*s:%.*s: %s", path_len, m.path, name_len, m.name,
                   src->error ? src->why : why);
            stats->broken++;
            k = has_block ? closing + 1 : k + 1;
            continue;
        }

        /* Lines written into the page end like the fence line (or, for a
         * block that is added, the marker line) of the page: CRLF pages stay
         * CRLF. */
        const char *eol = line_ending(&page, has_block ? k + 1 : k);
        if (!*eol)
            eol = "\n";
        if (!has_block) {
            if (!update) {
                report(r, page_name, k + 1,
                       "the include marker for %.*s:%.*s is not followed by a fenced code "
                       "block on the next line (--update adds one)",
                       path_len, m.path, name_len, m.name);
                stats->broken++;
            } else {
                /* Add the block right after the marker, with a fence longer
                 * than any backtick run that starts a region line. */
                fence added = {'`', 3, 0};
                while (region_closes_fence(src, &reg, &added))
                    added.len++;
                size_t marker_end = page.lines[k].start + page.lines[k].full;
                buffer_add(&out, page.data + copied, marker_end - copied);
                if (!*line_ending(&page, k))
                    buffer_add_string(&out, eol);
                for (size_t f = 0; f < added.len; f++)
                    buffer_add(&out, "`", 1);
                buffer_add_string(&out, info_for(m.path, m.path_len));
                buffer_add_string(&out, eol);
                add_region(&out, src, &reg, eol);
                for (size_t f = 0; f < added.len; f++)
                    buffer_add(&out, "`", 1);
                buffer_add_string(&out, eol);
                copied = marker_end;
                changed++;
                fprintf(r->options->out, "%s:%zu: added the block for %.*s:%.*s\n", page_name,
                        k + 1, path_len, m.path, name_len, m.name);
            }
            region_free(&reg);
            k++;
            continue;
        }

        /* A listing is read beside the prose: past the limit, the reader
         * loses the thread (STYLE.md: under 40 lines). No update fixes
         * that; a person cuts or splits the region. */
        if (r->options->max_lines > 0 && reg.count > r->options->max_lines) {
            report(r, page_name, k + 1,
                   "%.*s:%.*s is %zu lines, over the limit of %zu (--max-lines): leave out "
                   "what the page says anyway, or split it in two",
                   path_len, m.path, name_len, m.name, reg.count, r->options->max_lines);
            stats->too_long++;
        }

        size_t first = k + 2, count = closing - first;
        int same = count == reg.count;
        for (size_t c = 0; same && c < count; c++)
            same = lines_equal(&src->text, reg.lines[c], &page, first + c);
        if (!same) {
            if (!update) {
                print_difference(r, page_name, &page, k, first, count, src, &reg, &m);
                stats->differ++;
            } else if (region_closes_fence(src, &reg, &block)) {
                report(r, page_name, k + 2,
                       "a line of %.*s:%.*s would close this %c%c%c fence early: make the "
                       "fence longer",
                       path_len, m.path, name_len, m.name, block.ch, block.ch, block.ch);
                stats->broken++;
            } else {
                stats->differ++;
                size_t content_start = page.lines[first].start;
                size_t content_end = page.lines[closing].start;
                buffer_add(&out, page.data + copied, content_start - copied);
                add_region(&out, src, &reg, eol);
                copied = content_end;
                changed++;
                fprintf(r->options->out, "%s:%zu: rewrote the block for %.*s:%.*s\n", page_name,
                        k + 1, path_len, m.path, name_len, m.name);
            }
        }
        region_free(&reg);
        k = closing + 1;
    }
    if (in_fence) {
        report(r, page_name, open_line + 1, "code block never closed (no %c%c%c fence after it)",
               open.ch, open.ch, open.ch);
        stats->broken++;
    }

    if (changed + captions_changed > 0) {
        buffer_add(&out, page.data + copied, page.size - copied);
        char why[512];
        if (out.failed) {
            fprintf(r->options->err, "%s: out of memory, page left as it was\n", page_name);
            stats->broken++;
        } else if (replace_file(page_name, out.data, out.len, why, sizeof why) != 0) {
            fprintf(r->options->err, "%s: %s; page left as it was\n", page_name, why);
            stats->broken++;
        } else {
            stats->rewritten += changed;
            stats->pages_rewritten++;
        }
    }
    free(out.data);
    text_free(&page);
}

int evq_excerpts_process(const evq_excerpts_options *options, const char *const *pages,
                         size_t count, evq_excerpts_stats *stats)
{
    run r = {options, options->root ? options->root : ".", NULL, stats};
    memset(stats, 0, sizeof *stats);
    for (size_t k = 0; k < count; k++)
        process_page(&r, pages[k]);
    while (r.sources) {
        source *next = r.sources->next;
        text_free(&r.sources->text);
        free(r.sources->path);
        free(r.sources);
        r.sources = next;
    }
    fflush(options->out);
    fflush(options->err);
    if (stats->broken > 0 || stats->too_long > 0)
        return EVQ_EXCERPTS_FAILED;
    if (options->mode == EVQ_EXCERPTS_CHECK && (stats->differ > 0 || stats->captions > 0))
        return EVQ_EXCERPTS_FAILED;
    return EVQ_EXCERPTS_OK;
}

/* ---- the command line ------------------------------------------------------------- */

static const char usage[] =
    "Usage: excerpts [--check | --update] [--root DIR] [--listings] [--unnumbered PAGE]...\n"
    "                [--max-lines N] [PAGE.md ...]\n"
    "\n"
    "Checks that every code block introduced by a marker line\n"
    "    <!-- include: path/to/file.c:anchor -->\n"
    "in the given markdown pages equals the source region between the lines\n"
    "ANCHOR: anchor and ANCHOR_END: anchor of that file (a comment alone on its\n"
    "line), and prints a line diff where it does not.\n"
    "\n"
    "  --check       check only (the default); exit status 1 if anything differs\n"
    "  --update      rewrite differing blocks from the source, in place\n"
    "  --root DIR    where the paths in markers start (default: .)\n"
    "  --listings    every excerpt needs its caption on the line above the marker,\n"
    "                **Listing N.K** \xe2\x80\x94 `path` (N: the page's chapter number or\n"
    "                appendix letter, K: 1, 2, ... in page order); --update writes them\n"
    "  --unnumbered PAGE  no captions checked in PAGE (may be repeated)\n"
    "  --max-lines N a region of more than N lines fails, in both modes\n"
    "  --help        this text\n";

static const char *plural(size_t n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

int evq_excerpts_main(int argc, char **argv, FILE *out, FILE *err)
{
    evq_excerpts_options options = {EVQ_EXCERPTS_CHECK, ".", out, err, 0, NULL, 0, 0};
    const char **pages = malloc((size_t)(argc > 0 ? argc : 1) * sizeof *pages);
    const char **unnumbered = malloc((size_t)(argc > 0 ? argc : 1) * sizeof *unnumbered);
    size_t count = 0, unnumbered_count = 0;
    int options_done = 0;
    if (!pages || !unnumbered) {
        fprintf(err, "excerpts: out of memory\n");
        free(pages);
        free(unnumbered);
        return EVQ_EXCERPTS_FAILED;
    }
    for (int k = 1; k < argc; k++) {
        const char *arg = argv[k];
        if (options_done || arg[0] != '-' || arg[1] == '\0') {
            pages[count++] = arg;
        } else if (strcmp(arg, "--") == 0) {
            options_done = 1;
        } else if (strcmp(arg, "--check") == 0) {
            options.mode = EVQ_EXCERPTS_CHECK;
        } else if (strcmp(arg, "--update") == 0) {
            options.mode = EVQ_EXCERPTS_UPDATE;
        } else if (strcmp(arg, "--listings") == 0) {
            options.listings = 1;
        } else if (strcmp(arg, "--unnumbered") == 0 && k + 1 < argc) {
            unnumbered[unnumbered_count++] = argv[++k];
        } else if (strcmp(arg, "--max-lines") == 0 && k + 1 < argc) {
            char *end;
            const char *value = argv[++k];
            unsigned long n = strtoul(value, &end, 10);
            if (value[0] < '0' || value[0] > '9' || *end != '\0' || n == 0) {
                fprintf(err, "excerpts: --max-lines needs a number of lines above 0, got '%s'\n",
                        value);
                free(pages);
                free(unnumbered);
                return EVQ_EXCERPTS_USAGE;
            }
            options.max_lines = n;
        } else if (strcmp(arg, "--root") == 0 && k + 1 < argc) {
            options.root = argv[++k];
        } else if (strncmp(arg, "--root=", 7) == 0) {
            options.root = arg + 7;
        } else if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            fputs(usage, out);
            free(pages);
            free(unnumbered);
            return EVQ_EXCERPTS_OK;
        } else {
            fprintf(err, "excerpts: unknown option or missing value: %s\n\n%s", arg, usage);
            free(pages);
            free(unnumbered);
            return EVQ_EXCERPTS_USAGE;
        }
    }
    if (options.root[0] == '\0') {
        fprintf(err, "excerpts: --root needs a directory\n");
        free(pages);
        free(unnumbered);
        return EVQ_EXCERPTS_USAGE;
    }

    options.unnumbered = unnumbered;
    options.unnumbered_count = unnumbered_count;
    evq_excerpts_stats stats;
    int status = evq_excerpts_process(&options, pages, count, &stats);
    free(pages);
    free(unnumbered);
    fprintf(out, "excerpts: %zu %s checked in %zu %s", stats.excerpts,
            plural(stats.excerpts, "excerpt", "excerpts"), stats.pages,
            plural(stats.pages, "page", "pages"));
    if (options.mode == EVQ_EXCERPTS_UPDATE)
        fprintf(out, ", %zu %s rewritten in %zu %s", stats.rewritten,
                plural(stats.rewritten, "block", "blocks"), stats.pages_rewritten,
                plural(stats.pages_rewritten, "page", "pages"));
    else if (stats.differ > 0)
        fprintf(out, ", %zu %s from the source", stats.differ,
                plural(stats.differ, "differs", "differ"));
    if (stats.captions > 0)
        fprintf(out, ", %zu listing %s %s", stats.captions,
                plural(stats.captions, "caption", "captions"),
                options.mode == EVQ_EXCERPTS_UPDATE ? "written" : "missing or wrong");
    if (stats.too_long > 0)
        fprintf(out, ", %zu too long", stats.too_long);
    if (stats.broken > 0)
        fprintf(out, ", %zu broken", stats.broken);
    fputc('\n', out);
    if (options.mode == EVQ_EXCERPTS_CHECK && (stats.differ > 0 || stats.captions > 0))
        fprintf(out, "excerpts: the source is the truth: run the build target book-excerpts "
                     "(excerpts --update) to copy it into the pages\n");
    fflush(out);
    return status;
}
