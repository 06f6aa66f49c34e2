/* excerpts.h - the book's excerpt checker, as a small library.
 *
 * Code listings in the book's pages are never retyped: each one is a copy of a
 * marked region of a real source file, and this checker makes sure the copy
 * and the file agree.
 *
 * In a source file, a region is the lines strictly between two marker lines,
 * each a comment alone on its line (any indentation):
 *
 *     ANCHOR: name         as a C comment, or after '#' in CMake and shell files
 *     ...the region...
 *     ANCHOR_END: name
 *
 * (see the fixtures in tests/book/fixtures for real ones). Names
 * are [A-Za-z0-9_-]+. Regions may nest or overlap: marker lines of other
 * anchors inside a region are left out of it. Nothing else is changed (no
 * dedent); line endings do not count ("\r\n" and "\n" compare equal).
 *
 * In a page, a marker line names the region, and the very next line opens a
 * fenced code block (``` or ~~~, any info string) whose content must equal it:
 *
 *     <!-- include: chapters/02-oneshot/src/poll_epoll.c:wait -->
 *     ```c
 *     ...the region, byte for byte...
 *     ```
 *
 * The path is relative to the root (the repository); the anchor follows the
 * last ':'. Markers inside other code blocks are text, not markers.
 *
 * Listings are numbered and named by file. With `listings` on (the
 * command line's --listings), the line just above every include marker must
 * be its caption:
 *
 *     **Listing 2.3** — `chapters/02-oneshot/src/poll_epoll.c`
 *     <!-- include: chapters/02-oneshot/src/poll_epoll.c:wait -->
 *
 * numbered from 1 in the order of the page, after the page's own number:
 * the leading digits of its file name (02-oneshot.md: 2) or the letter of
 * an appendix (appendix-a-atomics.md: A). The file named is the marker's.
 * A page listed in `unnumbered` (--unnumbered PAGE) is not checked for
 * captions: pages are converted one at a time. Update mode writes missing
 * or wrong captions, as it does blocks.
 *
 * Check mode reports every block that differs (with a line diff: '-' what the
 * source has, '+' what the page has) and every marker that cannot be
 * resolved. Update mode rewrites differing blocks from the source (and adds
 * the block when a marker has none), leaving every other byte of the page as
 * it was; a page is replaced atomically (a temporary file, then a rename) and
 * only when something changed.
 */
#ifndef EVQ_EXCERPTS_H
#define EVQ_EXCERPTS_H

#include <stddef.h>
#include <stdio.h>

/* Exit statuses of the command line (and results of evq_excerpts_process). */
enum {
    EVQ_EXCERPTS_OK = 0,     /* every excerpt matches (check) or is now rewritten (update) */
    EVQ_EXCERPTS_FAILED = 1, /* a block differs, or a marker, page or source is broken */
    EVQ_EXCERPTS_USAGE = 2   /* bad command line */
};

typedef enum evq_excerpts_mode { EVQ_EXCERPTS_CHECK, EVQ_EXCERPTS_UPDATE } evq_excerpts_mode;

typedef struct evq_excerpts_options {
    evq_excerpts_mode mode;
    const char *root; /* where the paths in markers start; "." when NULL */
    FILE *out;        /* what was rewritten, and the summary */
    FILE *err;        /* differences and errors, one "page:line: ..." header each */
    int listings;     /* check (update: write) the "**Listing N.K**" caption of every excerpt */
    const char *const *unnumbered; /* pages exempt from `listings`, as named in `pages` */
    size_t unnumbered_count;
    size_t max_lines; /* a region longer than this many lines fails; 0: no limit */
} evq_excerpts_options;

typedef struct evq_excerpts_stats {
    size_t pages;           /* pages read */
    size_t excerpts;        /* include markers found */
    size_t differ;          /* blocks that differed from their region */
    size_t broken;          /* markers, pages or sources that could not be checked */
    size_t rewritten;       /* blocks rewritten or added (update mode) */
    size_t pages_rewritten; /* pages written back (update mode) */
    size_t captions;        /* listing captions missing or wrong (update: written) */
    size_t too_long;        /* regions over max_lines (a failure in both modes) */
} evq_excerpts_stats;

/* Check or update `count` pages. Returns EVQ_EXCERPTS_OK or
 * EVQ_EXCERPTS_FAILED (in update mode, differences that were rewritten are
 * not failures; broken markers are). Fills *stats; prints no summary. */
int evq_excerpts_process(const evq_excerpts_options *options, const char *const *pages,
                         size_t count, evq_excerpts_stats *stats);

/* The command line:
 *     excerpts [--check | --update] [--root DIR] [--listings] [--unnumbered PAGE]...
 *              [--max-lines N] [PAGE.md ...]
 * Prints the summary ("N excerpts checked in M pages") on `out` and returns
 * the exit status. */
int evq_excerpts_main(int argc, char **argv, FILE *out, FILE *err);

#endif
