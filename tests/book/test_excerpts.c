/* test_excerpts.c - the excerpt checker's self-test: book.excerpts.<case>.
 *
 * Sources come from tests/book/fixtures (EVQ_BOOK_FIXTURES, read only; the
 * line numbers below are those of fixtures/chapters/00-fixture/src/sample.c).
 * Pages, and the sources a case needs with odd bytes in them, are written by
 * the case into the working directory under names that start with the
 * case's own name, so cases can run in parallel. The checker runs in-process
 * through the same functions as the command line, its output captured in a
 * file and searched.
 */
#include "evq_test.h"
#include "excerpts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef EVQ_BOOK_FIXTURES
#error "EVQ_BOOK_FIXTURES must name tests/book/fixtures"
#endif

#define SAMPLE         "chapters/00-fixture/src/sample.c"
#define BROKEN         "chapters/00-fixture/src/broken.c"
#define INCLUDE(where) "<!-- include: " where " -->\n"

/* The region `wait` of sample.c (lines 8-16, without the nested `inner`
 * markers at lines 11 and 14). */
#define WAIT_REGION                                                                                \
    "int fixture_wait(const int *ready, size_t capacity)\n"                                        \
    "{\n"                                                                                          \
    "    int n = 0;\n"                                                                             \
    "    for (size_t i = 0; i < capacity; i++)\n"                                                  \
    "        n += ready[i] != 0;\n"                                                                \
    "    return n;\n"                                                                              \
    "}\n"

/* The same with the line from sample.c:13 edited by hand. */
#define WAIT_EDITED                                                                                \
    "int fixture_wait(const int *ready, size_t capacity)\n"                                        \
    "{\n"                                                                                          \
    "    int n = 0;\n"                                                                             \
    "    for (size_t i = 0; i < capacity; i++)\n"                                                  \
    "        n += ready[i] > 0;\n"                                                                 \
    "    return n;\n"                                                                              \
    "}\n"

/* The region `inner` (lines 12-13), nested in `wait`. */
#define INNER_REGION                                                                               \
    "    for (size_t i = 0; i < capacity; i++)\n"                                                  \
    "        n += ready[i] != 0;\n"

#define WHOLE_REGION                                                                               \
    WAIT_REGION "\n"                                                                               \
                "static int first = 1;\n"                                                          \
                "static int second = 2;\n"                                                         \
                "static int third = 3;\n"                                                          \
                "\n"                                                                               \
                "int fixture_sum(void)\n"                                                          \
                "{\n"                                                                              \
                "    return first + second + third;\n"                                             \
                "}\n"

/* A page with one excerpt: the marker at line 5, the fence at line 6, the
 * content from line 7. */
#define PAGE(where, content)                                                                       \
    "# A page\n"                                                                                   \
    "\n"                                                                                           \
    "Some prose.\n"                                                                                \
    "\n" INCLUDE(where) "```c\n" content "```\n"                                                   \
                        "\n"                                                                       \
                        "More prose.\n"

/* ---- helpers ----------------------------------------------------------------------- */

static char output[65536]; /* what the last run printed, out and err together */

static void write_file(const char *path, const char *content)
{
    FILE *file = fopen(path, "wb");
    if (!file) {
        evq_test_fail(__FILE__, __LINE__, "cannot create %s", path);
        return;
    }
    fwrite(content, 1, strlen(content), file);
    fclose(file);
}

/* The whole file as a string (into `into`), or "" when it cannot be read. */
static const char *read_file(const char *path, char *into, size_t size)
{
    into[0] = '\0';
    FILE *file = fopen(path, "rb");
    if (!file)
        return into;
    size_t got = fread(into, 1, size - 1, file);
    into[got] = '\0';
    fclose(file);
    return into;
}

/* Runs the checker on `pages`, sources under `root`; its output goes to
 * `log` and then into `output`. Returns the status and fills *stats. */
static int run_pages(const char *log, const char *root, evq_excerpts_mode mode,
                     const char *const *pages, size_t count, evq_excerpts_stats *stats)
{
    output[0] = '\0';
    FILE *file = fopen(log, "w+b");
    if (!file) {
        evq_test_fail(__FILE__, __LINE__, "cannot create %s", log);
        return -1;
    }
    evq_excerpts_options options = {mode, root, file, file, 0, NULL, 0, 0};
    int status = evq_excerpts_process(&options, pages, count, stats);
    fclose(file);
    read_file(log, output, sizeof output);
    printf("    | %s\n", output[0] ? "checker output:" : "(checker printed nothing)");
    fputs(output, stdout);
    return status;
}

static int run_one(const char *log, const char *root, evq_excerpts_mode mode, const char *page,
                   evq_excerpts_stats *stats)
{
    return run_pages(log, root, mode, &page, 1, stats);
}

/* The command line, argv[0] included. */
static int run_main(const char *log, int argc, char **argv)
{
    output[0] = '\0';
    FILE *file = fopen(log, "w+b");
    if (!file) {
        evq_test_fail(__FILE__, __LINE__, "cannot create %s", log);
        return -1;
    }
    int status = evq_excerpts_main(argc, argv, file, file);
    fclose(file);
    read_file(log, output, sizeof output);
    fputs(output, stdout);
    return status;
}

static int check_contains_(const char *haystack, const char *needle, int want, const char *file,
                           int line)
{
    int found = strstr(haystack, needle) != NULL;
    if (found == want)
        return 1;
    evq_test_fail(file, line, "the output %s \"%s\"", want ? "lacks" : "should not contain",
                  needle);
    return 0;
}

#define CHECK_OUTPUT_HAS(needle)   check_contains_(output, needle, 1, __FILE__, __LINE__)
#define CHECK_OUTPUT_LACKS(needle) check_contains_(output, needle, 0, __FILE__, __LINE__)

/* ---- a block equal to its region passes; an edited one fails with a diff -------- */

EVQ_TEST(identical_block_passes)
{
    evq_excerpts_stats stats;
    write_file("identical_block_passes.md", PAGE(SAMPLE ":wait", WAIT_REGION));
    CHECK_INT(run_one("identical_block_passes.log", EVQ_BOOK_FIXTURES, EVQ_EXCERPTS_CHECK,
                      "identical_block_passes.md", &stats),
              ==, EVQ_EXCERPTS_OK);
    CHECK_UINT(stats.pages, ==, 1);
    CHECK_UINT(stats.excerpts, ==, 1);
    CHECK_UINT(stats.differ, ==, 0);
    CHECK_UINT(stats.broken, ==, 0);
    CHECK_STR(output, ==, "");
}

EVQ_TEST(edited_line_fails_with_diff)
{
    evq_excerpts_stats stats;
    write_file("edited_line_fails_with_diff.md", PAGE(SAMPLE ":wait", WAIT_EDITED));
    CHECK_INT(run_one("edited_line_fails_with_diff.log", EVQ_BOOK_FIXTURES, EVQ_EXCERPTS_CHECK,
                      "edited_line_fails_with_diff.md", &stats),
              ==, EVQ_EXCERPTS_FAILED);
    CHECK_UINT(stats.excerpts, ==, 1);
    CHECK_UINT(stats.differ, ==, 1);
    /* The marker, then the edited line of the page and its line in the source. */
    CHECK_OUTPUT_HAS("edited_line_fails_with_diff.md:5: excerpt " SAMPLE
                     ":wait differs from its source\n");
    CHECK_OUTPUT_HAS("edited_line_fails_with_diff.md:11: first difference (source " SAMPLE
                     ":13)\n");
    CHECK_OUTPUT_HAS("--- " SAMPLE ":wait (source, lines 7-17)\n");
    CHECK_OUTPUT_HAS("+++ edited_line_fails_with_diff.md (page, block lines 6-14)\n");
    /* '-' what the source has, '+' what the page has, with context. */
    CHECK_OUTPUT_HAS("@@ source line 9, page line 8 @@\n"
                     " {\n"
                     "     int n = 0;\n"
                     "     for (size_t i = 0; i < capacity; i++)\n"
                     "-        n += ready[i] != 0;\n"
                     "+        n += ready[i] > 0;\n"
                     "     return n;\n"
                     " }\n");
}

EVQ_TEST(diff_shows_context_not_the_whole_block)
{
    evq_excerpts_stats stats;
    /* `whole` is 16 lines; one edit near its end. */
    /* clang-format off */
    write_file("diff_shows_context.md",
               PAGE(SAMPLE ":whole",
                    WAIT_REGION
                    "\n"
                    "static int first = 1;\n"
                    "static int second = 2;\n"
                    "static int third = 3;\n"
                    "\n"
                    "int fixture_sum(void)\n"
                    "{\n"
                    "    return first + second;\n"
                    "}\n"));
    /* clang-format on */
    CHECK_INT(run_one("diff_shows_context.log", EVQ_BOOK_FIXTURES, EVQ_EXCERPTS_CHECK,
                      "diff_shows_context.md", &stats),
              ==, EVQ_EXCERPTS_FAILED);
    CHECK_OUTPUT_HAS("diff_shows_context.md:21: first difference (source " SAMPLE ":29)\n");
    CHECK_OUTPUT_HAS(" int fixture_sum(void)\n {\n"
                     "-    return first + second + third;\n+    return first + second;\n }\n");
    /* Three lines of context, not the whole block. */
    CHECK_OUTPUT_LACKS("third = 3");
    CHECK_OUTPUT_LACKS("fixture_wait");
}

EVQ_TEST(missing_and_extra_lines_are_shown)
{
    evq_excerpts_stats stats;
    write_file("missing_and_extra.md",
               PAGE(SAMPLE ":wait", "int fixture_wait(const int *ready, size_t capacity)\n"
                                    "{\n"
                                    "    int n = 0;\n"
                                    "    for (size_t i = 0; i < capacity; i++)\n"
                                    "        n += ready[i] != 0;\n"
                                    "    /* a line the source does not have */\n"
                                    "    return n;\n"
                                    "}\n"
                                    "\n"));
    CHECK_INT(run_one("missing_and_extra.log", EVQ_BOOK_FIXTURES, EVQ_EXCERPTS_CHECK,
                      "missing_and_extra.md", &stats),
              ==, EVQ_EXCERPTS_FAILED);
    CHECK_OUTPUT_HAS("        n += ready[i] != 0;\n"
                     "+    /* a line the source does not have */\n"
                     "     return n;\n");
    CHECK_OUTPUT_HAS(" }\n+\n"); /* the blank line before the closing fence */
    CHECK_OUTPUT_LACKS("\n- ");
    CHECK_OUTPUT_LACKS("\n-}");

    /* And a block that lost its last two lines. */
    write_file("missing_and_extra_2.md",
               PAGE(SAMPLE ":wait", "int fixture_wait(const int *ready, size_t capacity)\n"
                                    "{\n"
                                    "    int n = 0;\n"
                                    "    for (size_t i = 0; i < capacity; i++)\n"
                                    "        n += ready[i] != 0;\n"));
    CHECK_INT(run_one("missing_and_extra_2.log", EVQ_BOOK_FIXTURES, EVQ_EXCERPTS_CHECK,
                      "missing_and_extra_2.md", &stats),
              ==, EVQ_EXCERPTS_FAILED);
    CHECK_OUTPUT_HAS("missing_and_extra_2.md:12: first difference (source " SAMPLE ":15)\n");
    CHECK_OUTPUT_HAS("-    return n;\n-}\n");
}

/* ---- what cannot be checked fails, each with its own message ---------------------- */

static void expect_broken(const char *name, const char *page_text, const char *message)
{
    char page[256], log[256];
    evq_excerpts_stats stats;
    snprintf(page, sizeof page, "%s.md", name);
    snprintf(log, sizeof log, "%s.log", name);
    write_file(page, page_text);
    CHECK_INT(run_one(log, EVQ_BOOK_FIXTURES, EVQ_EXCERPTS_CHECK, page, &stats), ==,
              EVQ_EXCERPTS_FAILED);
    CHECK_UINT(stats.broken, ==, 1);
    CHECK_UINT(stats.differ, ==, 0);
    CHECK_OUTPUT_HAS(message);
}

EVQ_TEST(missing_source_file_fails)
{
    expect_broken(
        "missing_source_file", PAGE("chapters/00-fixture/src/no_such_file.c:wait", WAIT_REGION),
        "missing_source_file.md:5: include chapters/00-fixture/src/no_such_file.c:wait: "
        "cannot read source file " EVQ_BOOK_FIXTURES "/chapters/00-fixture/src/no_such_file.c");
}

EVQ_TEST(missing_anchor_fails)
{
    expect_broken("missing_anchor", PAGE(SAMPLE ":no_such_anchor", WAIT_REGION),
                  "missing_anchor.md:5: include " SAMPLE ":no_such_anchor: " SAMPLE
                  " has no anchor 'no_such_anchor'");
}

EVQ_TEST(missing_anchor_end_fails)
{
    expect_broken("missing_anchor_end", PAGE(BROKEN ":no_end", "int d;\n"),
                  "missing_anchor_end.md:5: include " BROKEN ":no_end: " BROKEN
                  ":13: ANCHOR: no_end has no ANCHOR_END: no_end");
}

EVQ_TEST(anchor_defined_twice_fails)
{
    expect_broken("anchor_defined_twice", PAGE(BROKEN ":twice", "int a;\n"),
                  BROKEN ": anchor 'twice' is defined twice (ANCHOR lines 2 and 5)");
}

EVQ_TEST(anchor_end_before_anchor_fails)
{
    expect_broken("anchor_end_before_anchor", PAGE(BROKEN ":backwards", "int c;\n"),
                  BROKEN ":9: ANCHOR_END: backwards comes before its ANCHOR (line 11)");
}

EVQ_TEST(malformed_anchor_line_fails)
{
    /* A typo in any marker of the file fails every excerpt from it: the
     * broken marker would otherwise be copied into a region as code. */
    expect_broken("malformed_anchor_line",
                  PAGE("chapters/00-fixture/src/malformed.c:fine", "int e;\n"),
                  "chapters/00-fixture/src/malformed.c:5: malformed anchor line");
}

EVQ_TEST(missing_fence_fails)
{
    expect_broken("missing_fence",
                  "# A page\n\n" INCLUDE(SAMPLE ":wait") "The block was forgotten.\n",
                  "missing_fence.md:3: the include marker for " SAMPLE
                  ":wait is not followed by a fenced code block on the next line");
    /* "The very next line": a blank line in between is the same mistake. */
    expect_broken("fence_after_blank",
                  "# A page\n\n" INCLUDE(SAMPLE ":wait") "\n```c\n" WAIT_REGION "```\n",
                  "fence_after_blank.md:3: the include marker for " SAMPLE
                  ":wait is not followed by a fenced code block");
}

EVQ_TEST(unclosed_fence_fails)
{
    expect_broken("unclosed_fence", "# A page\n\n" INCLUDE(SAMPLE ":wait") "```c\n" WAIT_REGION,
                  "unclosed_fence.md:4: the code block for " SAMPLE
                  ":wait is never closed (no ``` fence after this line)");
    /* A fence of tildes is closed by tildes only. */
    expect_broken("unclosed_tilde_fence",
                  "# A page\n\n" INCLUDE(SAMPLE ":wait") "~~~c\n" WAIT_REGION "```\n",
                  "unclosed_tilde_fence.md:4: the code block for " SAMPLE ":wait is never closed");
    /* And a plain code block that never ends swallows the rest of the page. */
    expect_broken("unclosed_plain_fence", "# A page\n\n```sh\nmake\n\n" INCLUDE(SAMPLE ":wait"),
                  "unclosed_plain_fence.md:3: code block never closed");
}

EVQ_TEST(malformed_marker_fails)
{
    expect_broken("marker_without_anchor", "<!-- include: " SAMPLE " -->\n```c\n```\n",
                  "marker_without_anchor.md:1: malformed include marker");
    expect_broken("marker_absolute_path", "<!-- include: /etc/passwd:root -->\n```c\n```\n",
                  "marker_absolute_path.md:1: malformed include marker: the path must be "
                  "relative to the repository root");
    expect_broken("marker_dot_dot", "<!-- include: ../outside.c:x -->\n```c\n```\n",
                  "marker_dot_dot.md:1: malformed include marker: the path must stay inside");
    expect_broken("marker_bad_name", "<!-- include: " SAMPLE ":two words -->\n```c\n```\n",
                  "marker_bad_name.md:1: malformed include marker: the anchor name");
    expect_broken("marker_not_alone",
                  "<!-- include: " SAMPLE ":wait --> and more\n```c\n" WAIT_REGION "```\n",
                  "marker_not_alone.md:1: malformed include marker: the marker must be alone");
}

EVQ_TEST(indented_fence_fails)
{
    expect_broken("indented_fence",
                  "- item\n\n  " INCLUDE(SAMPLE ":wait") "  ```c\n" WAIT_REGION "  ```\n",
                  "indented_fence.md:4: the code block after the include marker for " SAMPLE
                  ":wait is indented");
}

EVQ_TEST(missing_page_fails)
{
    evq_excerpts_stats stats;
    CHECK_INT(run_one("missing_page.log", EVQ_BOOK_FIXTURES, EVQ_EXCERPTS_CHECK,
                      "missing_page_does_not_exist.md", &stats),
              ==, EVQ_EXCERPTS_FAILED);
    CHECK_UINT(stats.broken, ==, 1);
    CHECK_UINT(stats.pages, ==, 0);
    CHECK_OUTPUT_HAS("missing_page_does_not_exist.md: cannot read page");
}

/* ---- what a region is -------------------------------------------------------------- */

EVQ_TEST(nested_anchors_are_stripped)
{
    evq_excerpts_stats stats;
    /* wait contains inner; whole contains wait, inner, overlap_a and
     * overlap_b; overlap_a and overlap_b overlap. No marker line is in any
     * region, and each region is still exactly its own lines. */
    /* clang-format off */
    write_file("nested_anchors.md",
               INCLUDE(SAMPLE ":wait")
               "```c\n" WAIT_REGION "```\n"
               INCLUDE(SAMPLE ":inner")
               "```c\n" INNER_REGION "```\n"
               INCLUDE(SAMPLE ":whole")
               "```c\n" WHOLE_REGION "```\n"
               INCLUDE(SAMPLE ":overlap_a")
               "```c\n"
               "static int first = 1;\n"
               "static int second = 2;\n"
               "```\n"
               INCLUDE(SAMPLE ":overlap_b")
               "```c\n"
               "static int second = 2;\n"
               "static int third = 3;\n"
               "```\n");
    /* clang-format on */
    CHECK_INT(run_one("nested_anchors.log", EVQ_BOOK_FIXTURES, EVQ_EXCERPTS_CHECK,
                      "nested_anchors.md", &stats),
              ==, EVQ_EXCERPTS_OK);
    CHECK_UINT(stats.excerpts, ==, 5);
    CHECK_UINT(stats.differ, ==, 0);

    /* A block that kept a nested marker line is a difference. */
    /* clang-format off */
    write_file("nested_anchors_kept.md",
               INCLUDE(SAMPLE ":overlap_a")
               "```c\n"
               "static int first = 1;\n"
               "/* ANCHOR: overlap_b */\n"
               "static int second = 2;\n"
               "```\n");
    /* clang-format on */
    CHECK_INT(run_one("nested_anchors_kept.log", EVQ_BOOK_FIXTURES, EVQ_EXCERPTS_CHECK,
                      "nested_anchors_kept.md", &stats),
              ==, EVQ_EXCERPTS_FAILED);
    CHECK_OUTPUT_HAS("+/* ANCHOR: overlap_b */\n");
}

EVQ_TEST(region_is_byte_for_byte)
{
    evq_excerpts_stats stats;
    /* Tabs, a trailing tab and trailing spaces, no dedent. */
    write_file("byte_for_byte.md",
               INCLUDE(SAMPLE ":tabs") "```c\n\tif (x > 0)\t\n\t\treturn x;  \n```\n");
    CHECK_INT(run_one("byte_for_byte.log", EVQ_BOOK_FIXTURES, EVQ_EXCERPTS_CHECK,
                      "byte_for_byte.md", &stats),
              ==, EVQ_EXCERPTS_OK);
    /* Without the trailing blanks it differs. */
    write_file("byte_for_byte_trimmed.md",
               INCLUDE(SAMPLE ":tabs") "```c\n\tif (x > 0)\n\t\treturn x;\n```\n");
    CHECK_INT(run_one("byte_for_byte_trimmed.log", EVQ_BOOK_FIXTURES, EVQ_EXCERPTS_CHECK,
                      "byte_for_byte_trimmed.md", &stats),
              ==, EVQ_EXCERPTS_FAILED);
    /* Dedented, it differs too. */
    write_file("byte_for_byte_dedented.md",
               INCLUDE(SAMPLE ":tabs") "```c\nif (x > 0)\t\n\treturn x;  \n```\n");
    CHECK_INT(run_one("byte_for_byte_dedented.log", EVQ_BOOK_FIXTURES, EVQ_EXCERPTS_CHECK,
                      "byte_for_byte_dedented.md", &stats),
              ==, EVQ_EXCERPTS_FAILED);
    CHECK_UINT(stats.differ, ==, 1);
}

EVQ_TEST(hash_anchors_in_cmake_files)
{
    evq_excerpts_stats stats;
    /* clang-format off */
    write_file("hash_anchors.md",
               INCLUDE("chapters/00-fixture/CMakeLists.txt:library")
               "```cmake\n"
               "add_library(fixture STATIC src/sample.c)\n"
               "target_include_directories(fixture PUBLIC include)\n"
               "```\n"
               INCLUDE("chapters/00-fixture/CMakeLists.txt:nested")
               "```cmake\n"
               "target_include_directories(fixture PUBLIC include)\n"
               "```\n");
    /* clang-format on */
    CHECK_INT(run_one("hash_anchors.log", EVQ_BOOK_FIXTURES, EVQ_EXCERPTS_CHECK, "hash_anchors.md",
                      &stats),
              ==, EVQ_EXCERPTS_OK);
    CHECK_UINT(stats.excerpts, ==, 2);
}

EVQ_TEST(crlf_source_matches_lf_page)
{
    evq_excerpts_stats stats;
    /* A source checked out with Windows line endings: only the content of a
     * line counts, not its terminator. Root "." is the working directory. */
    write_file("crlf_source.c", "int a;\r\n/* ANCHOR: part */\r\nint b;\r\n\tint c;\r\n"
                                "/* ANCHOR_END: part */\r\n");
    write_file("crlf_source.md", INCLUDE("crlf_source.c:part") "```c\nint b;\n\tint c;\n```\n");
    CHECK_INT(run_one("crlf_source.log", ".", EVQ_EXCERPTS_CHECK, "crlf_source.md", &stats), ==,
              EVQ_EXCERPTS_OK);
    CHECK_UINT(stats.excerpts, ==, 1);
}

/* ---- pages: several excerpts, the same anchor twice, markers that are text -------- */

EVQ_TEST(multiple_excerpts_in_one_page)
{
    evq_excerpts_stats stats;
    /* clang-format off */
    write_file("multiple_excerpts.md",
               "# Three excerpts\n"                     /* line 1 */
               "\n"
               INCLUDE(SAMPLE ":inner")                  /* line 3 */
               "```c\n" INNER_REGION "```\n"
               "\n"
               "Text.\n"
               "\n"
               INCLUDE(SAMPLE ":wait")                   /* line 11 */
               "```c\n" WAIT_EDITED "```\n"             /* edited: line 17 */
               "\n"
               INCLUDE(SAMPLE ":overlap_b")
               "```c\n"
               "static int second = 2;\n"
               "static int third = 3;\n"
               "```\n");
    /* clang-format on */
    CHECK_INT(run_one("multiple_excerpts.log", EVQ_BOOK_FIXTURES, EVQ_EXCERPTS_CHECK,
                      "multiple_excerpts.md", &stats),
              ==, EVQ_EXCERPTS_FAILED);
    CHECK_UINT(stats.excerpts, ==, 3);
    CHECK_UINT(stats.differ, ==, 1);
    /* Only the second one, at line 11, is reported. */
    CHECK_OUTPUT_HAS("multiple_excerpts.md:11: excerpt " SAMPLE ":wait differs from its source\n");
    CHECK_OUTPUT_HAS("multiple_excerpts.md:17: first difference (source " SAMPLE ":13)\n");
    CHECK_OUTPUT_LACKS(":inner");
    CHECK_OUTPUT_LACKS(":overlap_b");
}

EVQ_TEST(same_anchor_in_two_pages)
{
    evq_excerpts_stats stats;
    write_file("same_anchor_a.md", PAGE(SAMPLE ":wait", WAIT_REGION));
    write_file("same_anchor_b.md", PAGE(SAMPLE ":wait", WAIT_REGION));
    const char *pages[] = {"same_anchor_a.md", "same_anchor_b.md"};
    CHECK_INT(run_pages("same_anchor.log", EVQ_BOOK_FIXTURES, EVQ_EXCERPTS_CHECK, pages, 2, &stats),
              ==, EVQ_EXCERPTS_OK);
    CHECK_UINT(stats.pages, ==, 2);
    CHECK_UINT(stats.excerpts, ==, 2);

    /* Edited in one of them: that page, and only it, is reported. */
    write_file("same_anchor_b.md", PAGE(SAMPLE ":wait", WAIT_EDITED));
    CHECK_INT(run_pages("same_anchor.log", EVQ_BOOK_FIXTURES, EVQ_EXCERPTS_CHECK, pages, 2, &stats),
              ==, EVQ_EXCERPTS_FAILED);
    CHECK_UINT(stats.excerpts, ==, 2);
    CHECK_UINT(stats.differ, ==, 1);
    CHECK_OUTPUT_HAS("same_anchor_b.md:5: excerpt " SAMPLE ":wait differs");
    CHECK_OUTPUT_LACKS("same_anchor_a.md");
}

EVQ_TEST(markers_inside_code_blocks_are_text)
{
    evq_excerpts_stats stats;
    /* A page that shows the marker syntax in a code block checks nothing. */
    /* clang-format off */
    write_file("markers_in_code.md",
               "How to include code:\n"
               "\n"
               "~~~~markdown\n"
               INCLUDE("chapters/nowhere.c:x")
               "```c\n"
               "```\n"
               "~~~~\n"
               "\n"
               "````\n"
               INCLUDE("chapters/nowhere.c:y")
               "```\n"
               "````\n");
    /* clang-format on */
    CHECK_INT(run_one("markers_in_code.log", EVQ_BOOK_FIXTURES, EVQ_EXCERPTS_CHECK,
                      "markers_in_code.md", &stats),
              ==, EVQ_EXCERPTS_OK);
    CHECK_UINT(stats.excerpts, ==, 0);
}

EVQ_TEST(tilde_and_long_fences)
{
    evq_excerpts_stats stats;
    /* clang-format off */
    write_file("long_fences.md",
               INCLUDE(SAMPLE ":wait")
               "~~~c\n" WAIT_REGION "~~~~\n"
               INCLUDE(SAMPLE ":wait")
               "````c title=\"wait\"\n" WAIT_REGION "````\n");
    /* clang-format on */
    CHECK_INT(
        run_one("long_fences.log", EVQ_BOOK_FIXTURES, EVQ_EXCERPTS_CHECK, "long_fences.md", &stats),
        ==, EVQ_EXCERPTS_OK);
    CHECK_UINT(stats.excerpts, ==, 2);
}

/* ---- --update ------------------------------------------------------------------------- */

EVQ_TEST(update_rewrites_only_the_block)
{
    evq_excerpts_stats stats;
    /* Prose with trailing blanks, a correct excerpt, an edited one, and no
     * newline at the end: everything but the edited block stays as it was. */
    /* clang-format off */
    static const char before[] =
        "# Page  \n"
        "\n"
        "\tIndented prose.\n"
        "\n"
        INCLUDE(SAMPLE ":inner")
        "```c\n" INNER_REGION "```\n"
        "\n"
        INCLUDE(SAMPLE ":wait")          /* line 11 */
        "```c\n" WAIT_EDITED "```\n"
        "Last line, no newline.";
    static const char after[] =
        "# Page  \n"
        "\n"
        "\tIndented prose.\n"
        "\n"
        INCLUDE(SAMPLE ":inner")
        "```c\n" INNER_REGION "```\n"
        "\n"
        INCLUDE(SAMPLE ":wait")
        "```c\n" WAIT_REGION "```\n"
        "Last line, no newline.";
    /* clang-format on */
    char text[4096];
    write_file("update_rewrites.md", before);
    CHECK_INT(run_one("update_rewrites.log", EVQ_BOOK_FIXTURES, EVQ_EXCERPTS_UPDATE,
                      "update_rewrites.md", &stats),
              ==, EVQ_EXCERPTS_OK);
    CHECK_UINT(stats.excerpts, ==, 2);
    CHECK_UINT(stats.rewritten, ==, 1);
    CHECK_UINT(stats.pages_rewritten, ==, 1);
    CHECK_OUTPUT_HAS("update_rewrites.md:11: rewrote the block for " SAMPLE ":wait\n");
    CHECK_STR(read_file("update_rewrites.md", text, sizeof text), ==, after);
    /* No temporary file is left behind. */
    CHECK_STR(read_file("update_rewrites.md.excerpts-tmp", text, sizeof text), ==, "");

    /* A check afterwards passes, and a second update changes nothing. */
    CHECK_INT(run_one("update_rewrites.log", EVQ_BOOK_FIXTURES, EVQ_EXCERPTS_CHECK,
                      "update_rewrites.md", &stats),
              ==, EVQ_EXCERPTS_OK);
    CHECK_INT(run_one("update_rewrites.log", EVQ_BOOK_FIXTURES, EVQ_EXCERPTS_UPDATE,
                      "update_rewrites.md", &stats),
              ==, EVQ_EXCERPTS_OK);
    CHECK_UINT(stats.rewritten, ==, 0);
    CHECK_UINT(stats.pages_rewritten, ==, 0);
    CHECK_STR(read_file("update_rewrites.md", text, sizeof text), ==, after);
}

EVQ_TEST(update_keeps_crlf_pages_crlf)
{
    evq_excerpts_stats stats;
    char text[4096];
    write_file("update_crlf.md", "Intro\r\n\r\n<!-- include: " SAMPLE ":overlap_b -->\r\n"
                                 "```c\r\n"
                                 "static int second = 2;\r\n"
                                 "static int third = 4;\r\n"
                                 "```\r\n"
                                 "Outro\r\n");
    /* Unchanged lines compare equal whatever their ending... */
    CHECK_INT(
        run_one("update_crlf.log", EVQ_BOOK_FIXTURES, EVQ_EXCERPTS_CHECK, "update_crlf.md", &stats),
        ==, EVQ_EXCERPTS_FAILED);
    CHECK_OUTPUT_HAS("-static int third = 3;\n+static int third = 4;\n");
    /* ...and rewritten lines get the page's "\r\n". */
    CHECK_INT(run_one("update_crlf.log", EVQ_BOOK_FIXTURES, EVQ_EXCERPTS_UPDATE, "update_crlf.md",
                      &stats),
              ==, EVQ_EXCERPTS_OK);
    CHECK_STR(read_file("update_crlf.md", text, sizeof text), ==,
              "Intro\r\n\r\n<!-- include: " SAMPLE ":overlap_b -->\r\n```c\r\n"
              "static int second = 2;\r\n"
              "static int third = 3;\r\n"
              "```\r\n"
              "Outro\r\n");
    CHECK_INT(
        run_one("update_crlf.log", EVQ_BOOK_FIXTURES, EVQ_EXCERPTS_CHECK, "update_crlf.md", &stats),
        ==, EVQ_EXCERPTS_OK);
}

EVQ_TEST(update_adds_a_missing_block)
{
    evq_excerpts_stats stats;
    char text[4096];
    /* clang-format off */
    write_file("update_adds.md",
               "Before.\n"
               INCLUDE(SAMPLE ":overlap_a")
               "After.\n"
               INCLUDE("chapters/00-fixture/CMakeLists.txt:nested"));
    /* clang-format on */
    CHECK_INT(run_one("update_adds.log", EVQ_BOOK_FIXTURES, EVQ_EXCERPTS_UPDATE, "update_adds.md",
                      &stats),
              ==, EVQ_EXCERPTS_OK);
    CHECK_UINT(stats.rewritten, ==, 2);
    CHECK_OUTPUT_HAS("update_adds.md:2: added the block for " SAMPLE ":overlap_a\n");
    /* clang-format off */
    CHECK_STR(read_file("update_adds.md", text, sizeof text), ==,
              "Before.\n"
              INCLUDE(SAMPLE ":overlap_a")
              "```c\n"
              "static int first = 1;\n"
              "static int second = 2;\n"
              "```\n"
              "After.\n"
              INCLUDE("chapters/00-fixture/CMakeLists.txt:nested")
              "```cmake\n"
              "target_include_directories(fixture PUBLIC include)\n"
              "```\n");
    /* clang-format on */
    CHECK_INT(
        run_one("update_adds.log", EVQ_BOOK_FIXTURES, EVQ_EXCERPTS_CHECK, "update_adds.md", &stats),
        ==, EVQ_EXCERPTS_OK);
}

EVQ_TEST(update_rewrites_what_it_can_and_fails_on_the_rest)
{
    evq_excerpts_stats stats;
    char text[4096];
    /* clang-format off */
    write_file("update_partial.md",
               PAGE(SAMPLE ":wait", WAIT_EDITED)
               "\n"
               INCLUDE(SAMPLE ":no_such_anchor")
               "```c\nkept\n```\n");
    /* clang-format on */
    CHECK_INT(run_one("update_partial.log", EVQ_BOOK_FIXTURES, EVQ_EXCERPTS_UPDATE,
                      "update_partial.md", &stats),
              ==, EVQ_EXCERPTS_FAILED);
    CHECK_UINT(stats.rewritten, ==, 1);
    CHECK_UINT(stats.broken, ==, 1);
    CHECK_OUTPUT_HAS("has no anchor 'no_such_anchor'");
    /* The edited block is rewritten, the broken one left as it was. */
    /* clang-format off */
    CHECK_STR(read_file("update_partial.md", text, sizeof text), ==,
              PAGE(SAMPLE ":wait", WAIT_REGION)
              "\n"
              INCLUDE(SAMPLE ":no_such_anchor")
              "```c\nkept\n```\n");
    /* clang-format on */
}

EVQ_TEST(update_lengthens_fences_only_when_it_adds_a_block)
{
    evq_excerpts_stats stats;
    char text[4096];
    /* A region with a ``` line in it (a comment quoting markdown). */
    write_file("fence_in_region.c", "/* ANCHOR: doc */\n/*\n```\nexample\n```\n*/\n"
                                    "/* ANCHOR_END: doc */\n");
    /* An update will not write it into a ``` block, where it would end the
     * block early... */
    write_file("fence_in_region.md", INCLUDE("fence_in_region.c:doc") "```c\nold\n```\n");
    CHECK_INT(
        run_one("fence_in_region.log", ".", EVQ_EXCERPTS_UPDATE, "fence_in_region.md", &stats), ==,
        EVQ_EXCERPTS_FAILED);
    CHECK_OUTPUT_HAS("fence_in_region.md:2: a line of fence_in_region.c:doc would close this ``` "
                     "fence early");
    CHECK_STR(read_file("fence_in_region.md", text, sizeof text), ==,
              INCLUDE("fence_in_region.c:doc") "```c\nold\n```\n");
    /* ...and a block it adds gets a longer fence. */
    write_file("fence_in_region_2.md", INCLUDE("fence_in_region.c:doc"));
    CHECK_INT(
        run_one("fence_in_region_2.log", ".", EVQ_EXCERPTS_UPDATE, "fence_in_region_2.md", &stats),
        ==, EVQ_EXCERPTS_OK);
    CHECK_STR(read_file("fence_in_region_2.md", text, sizeof text), ==,
              INCLUDE("fence_in_region.c:doc") "````c\n/*\n```\nexample\n```\n*/\n````\n");
    CHECK_INT(
        run_one("fence_in_region_2.log", ".", EVQ_EXCERPTS_CHECK, "fence_in_region_2.md", &stats),
        ==, EVQ_EXCERPTS_OK);
}

/* ---- the command line ---------------------------------------------------------------- */

EVQ_TEST(command_line_summary_and_status)
{
    char root[] = EVQ_BOOK_FIXTURES;
    write_file("cli_good.md",
               PAGE(SAMPLE ":wait", WAIT_REGION) PAGE(SAMPLE ":inner", INNER_REGION));
    write_file("cli_edited.md", PAGE(SAMPLE ":wait", WAIT_EDITED));
    char arg0[] = "excerpts", check[] = "--check", update[] = "--update", root_opt[] = "--root";
    char good[] = "cli_good.md", edited[] = "cli_edited.md";

    char *pass[] = {arg0, root_opt, root, good, NULL};
    CHECK_INT(run_main("cli.log", 4, pass), ==, 0);
    CHECK_OUTPUT_HAS("excerpts: 2 excerpts checked in 1 page\n");

    char *fail[] = {arg0, check, root_opt, root, good, edited, NULL};
    CHECK_INT(run_main("cli.log", 6, fail), ==, 1);
    CHECK_OUTPUT_HAS("cli_edited.md:5: excerpt " SAMPLE ":wait differs from its source\n");
    CHECK_OUTPUT_HAS("excerpts: 3 excerpts checked in 2 pages, 1 differs from the source\n");
    CHECK_OUTPUT_HAS("book-excerpts");

    char *fix[] = {arg0, update, root_opt, root, good, edited, NULL};
    CHECK_INT(run_main("cli.log", 6, fix), ==, 0);
    CHECK_OUTPUT_HAS("excerpts: 3 excerpts checked in 2 pages, 1 block rewritten in 1 page\n");
    CHECK_INT(run_main("cli.log", 6, fail), ==, 0);

    char *none[] = {arg0, NULL};
    CHECK_INT(run_main("cli.log", 1, none), ==, 0);
    CHECK_OUTPUT_HAS("excerpts: 0 excerpts checked in 0 pages\n");
}

/* ---- listing captions (--listings) --------------------------------------------------- */

#define DASH       "\xe2\x80\x94"
#define CAPTION(n) "**Listing " n "** " DASH " `" SAMPLE "`\n"

EVQ_TEST(listings_with_captions_pass)
{
    char root[] = EVQ_BOOK_FIXTURES;
    /* clang-format off */
    write_file("02-captions.md",
               "# Chapter two\n\n"
               CAPTION("2.1") INCLUDE(SAMPLE ":wait") "```c\n" WAIT_REGION "```\n"
               "\nProse.\n\n"
               CAPTION("2.2") INCLUDE(SAMPLE ":inner") "```c\n" INNER_REGION "```\n");
    /* clang-format on */
    char arg0[] = "excerpts", listings[] = "--listings", root_opt[] = "--root",
         page[] = "02-captions.md";
    char *argv[] = {arg0, listings, root_opt, root, page, NULL};
    CHECK_INT(run_main("captions_pass.log", 5, argv), ==, 0);
    CHECK_OUTPUT_HAS("excerpts: 2 excerpts checked in 1 page\n");
}

EVQ_TEST(missing_and_wrong_captions_fail)
{
    char root[] = EVQ_BOOK_FIXTURES;
    /* The first has the second's number, the second has none. */
    /* clang-format off */
    write_file("02-wrong-captions.md",
               "# Chapter two\n\n"
               CAPTION("2.2") INCLUDE(SAMPLE ":wait") "```c\n" WAIT_REGION "```\n"  /* 3-4 */
               "\n"
               INCLUDE(SAMPLE ":inner") "```c\n" INNER_REGION "```\n");
    /* clang-format on */
    char arg0[] = "excerpts", listings[] = "--listings", root_opt[] = "--root";
    char page[] = "02-wrong-captions.md";
    char *argv[] = {arg0, listings, root_opt, root, page, NULL};
    CHECK_INT(run_main("wrong_captions.log", 5, argv), ==, 1);
    CHECK_OUTPUT_HAS("02-wrong-captions.md:3: listing caption '**Listing 2.2** " DASH " `" SAMPLE
                     "`' should be '**Listing 2.1** " DASH " `" SAMPLE "`'\n");
    CHECK_OUTPUT_HAS("no listing caption above the include marker for " SAMPLE ":inner "
                     "(expected '**Listing 2.2** " DASH " `" SAMPLE "`' on the line above)");
    CHECK_OUTPUT_HAS(", 2 listing captions missing or wrong\n");

    /* Without --listings the same page is fine: captions are opt-in. */
    char *plain[] = {arg0, root_opt, root, page, NULL};
    CHECK_INT(run_main("wrong_captions.log", 4, plain), ==, 0);
}

EVQ_TEST(update_writes_captions)
{
    char root[] = EVQ_BOOK_FIXTURES, text[8192];
    /* clang-format off */
    write_file("appendix-z-captions.md",
               "# Appendix Z\n\n"
               "**Listing Z.7** " DASH " `elsewhere.c`\n"
               INCLUDE(SAMPLE ":wait") "```c\n" WAIT_REGION "```\n"
               "\n"
               INCLUDE(SAMPLE ":inner") "```c\n" INNER_REGION "```\n");
    /* clang-format on */
    char arg0[] = "excerpts", listings[] = "--listings", update[] = "--update";
    char root_opt[] = "--root", page[] = "appendix-z-captions.md";
    char *argv[] = {arg0, update, listings, root_opt, root, page, NULL};
    CHECK_INT(run_main("update_captions.log", 6, argv), ==, 0);
    CHECK_OUTPUT_HAS("rewrote the caption '**Listing Z.1** " DASH " `" SAMPLE "`'");
    CHECK_OUTPUT_HAS("added the caption '**Listing Z.2** " DASH " `" SAMPLE "`'");
    CHECK_OUTPUT_HAS(", 2 listing captions written\n");
    /* clang-format off */
    CHECK_STR(read_file("appendix-z-captions.md", text, sizeof text), ==,
              "# Appendix Z\n\n"
              CAPTION("Z.1") INCLUDE(SAMPLE ":wait") "```c\n" WAIT_REGION "```\n"
              "\n"
              CAPTION("Z.2") INCLUDE(SAMPLE ":inner") "```c\n" INNER_REGION "```\n");
    /* clang-format on */
    char check[] = "--check";
    char *again[] = {arg0, check, listings, root_opt, root, page, NULL};
    CHECK_INT(run_main("update_captions.log", 6, again), ==, 0);
}

EVQ_TEST(unnumbered_pages_are_exempt_and_unnamed_pages_fail)
{
    char root[] = EVQ_BOOK_FIXTURES;
    write_file("03-not-yet.md", PAGE(SAMPLE ":wait", WAIT_REGION));
    write_file("no-number.md", PAGE(SAMPLE ":wait", WAIT_REGION));
    char arg0[] = "excerpts", listings[] = "--listings", root_opt[] = "--root";
    char exempt[] = "--unnumbered", not_yet[] = "03-not-yet.md", no_number[] = "no-number.md";
    char *argv[] = {arg0, listings, exempt, not_yet, root_opt, root, not_yet, NULL};
    CHECK_INT(run_main("unnumbered_pages.log", 7, argv), ==, 0);
    char *unnamed[] = {arg0, listings, root_opt, root, no_number, NULL};
    CHECK_INT(run_main("unnumbered_pages.log", 5, unnamed), ==, 1);
    CHECK_OUTPUT_HAS("no-number.md:5: cannot number this page's listings");
}

/* ---- the length of a listing (--max-lines) ---------------------------------------- */

EVQ_TEST(a_region_over_max_lines_fails_in_both_modes)
{
    char root[] = EVQ_BOOK_FIXTURES;
    /* `wait` is 7 lines, `inner` 2. */
    write_file("max_lines.md",
               PAGE(SAMPLE ":wait", WAIT_REGION) PAGE(SAMPLE ":inner", INNER_REGION));
    char arg0[] = "excerpts", max[] = "--max-lines", seven[] = "7", six[] = "6";
    char update[] = "--update", root_opt[] = "--root", page[] = "max_lines.md";
    char *at_the_limit[] = {arg0, max, seven, root_opt, root, page, NULL};
    CHECK_INT(run_main("max_lines.log", 6, at_the_limit), ==, 0);
    CHECK_OUTPUT_HAS("excerpts: 2 excerpts checked in 1 page\n");

    char *over[] = {arg0, max, six, root_opt, root, page, NULL};
    CHECK_INT(run_main("max_lines.log", 6, over), ==, 1);
    CHECK_OUTPUT_HAS("max_lines.md:5: " SAMPLE ":wait is 7 lines, over the limit of 6 "
                     "(--max-lines)");
    CHECK_OUTPUT_HAS("excerpts: 2 excerpts checked in 1 page, 1 too long\n");
    CHECK_OUTPUT_LACKS(SAMPLE ":inner is");

    /* --update copies blocks; it cannot shorten a region, so it fails too. */
    char *over_update[] = {arg0, update, max, six, root_opt, root, page, NULL};
    CHECK_INT(run_main("max_lines.log", 7, over_update), ==, 1);
    CHECK_OUTPUT_HAS(", 1 too long\n");

    char zero[] = "0", word[] = "forty";
    char *bad_zero[] = {arg0, max, zero, page, NULL};
    CHECK_INT(run_main("max_lines.log", 4, bad_zero), ==, 2);
    CHECK_OUTPUT_HAS("--max-lines needs a number of lines above 0, got '0'");
    char *bad_word[] = {arg0, max, word, page, NULL};
    CHECK_INT(run_main("max_lines.log", 4, bad_word), ==, 2);
    CHECK_OUTPUT_HAS("got 'forty'");
}

EVQ_TEST(command_line_rejects_bad_options)
{
    char arg0[] = "excerpts", bogus[] = "--bogus", root_opt[] = "--root", help[] = "--help";
    char *unknown[] = {arg0, bogus, NULL};
    CHECK_INT(run_main("cli_bad.log", 2, unknown), ==, 2);
    CHECK_OUTPUT_HAS("unknown option or missing value: --bogus");
    CHECK_OUTPUT_HAS("Usage: excerpts");
    char *no_root[] = {arg0, root_opt, NULL};
    CHECK_INT(run_main("cli_bad.log", 2, no_root), ==, 2);
    char *usage[] = {arg0, help, NULL};
    CHECK_INT(run_main("cli_bad.log", 2, usage), ==, 0);
    CHECK_OUTPUT_HAS("--update");
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(identical_block_passes),
        EVQ_CASE(edited_line_fails_with_diff),
        EVQ_CASE(diff_shows_context_not_the_whole_block),
        EVQ_CASE(missing_and_extra_lines_are_shown),
        EVQ_CASE(missing_source_file_fails),
        EVQ_CASE(missing_anchor_fails),
        EVQ_CASE(missing_anchor_end_fails),
        EVQ_CASE(anchor_defined_twice_fails),
        EVQ_CASE(anchor_end_before_anchor_fails),
        EVQ_CASE(malformed_anchor_line_fails),
        EVQ_CASE(missing_fence_fails),
        EVQ_CASE(unclosed_fence_fails),
        EVQ_CASE(malformed_marker_fails),
        EVQ_CASE(indented_fence_fails),
        EVQ_CASE(missing_page_fails),
        EVQ_CASE(nested_anchors_are_stripped),
        EVQ_CASE(region_is_byte_for_byte),
        EVQ_CASE(hash_anchors_in_cmake_files),
        EVQ_CASE(crlf_source_matches_lf_page),
        EVQ_CASE(multiple_excerpts_in_one_page),
        EVQ_CASE(same_anchor_in_two_pages),
        EVQ_CASE(markers_inside_code_blocks_are_text),
        EVQ_CASE(tilde_and_long_fences),
        EVQ_CASE(update_rewrites_only_the_block),
        EVQ_CASE(update_keeps_crlf_pages_crlf),
        EVQ_CASE(update_adds_a_missing_block),
        EVQ_CASE(update_rewrites_what_it_can_and_fails_on_the_rest),
        EVQ_CASE(update_lengthens_fences_only_when_it_adds_a_block),
        EVQ_CASE(command_line_summary_and_status),
        EVQ_CASE(a_region_over_max_lines_fails_in_both_modes),
        EVQ_CASE(command_line_rejects_bad_options),
        EVQ_CASE(listings_with_captions_pass),
        EVQ_CASE(missing_and_wrong_captions_fail),
        EVQ_CASE(update_writes_captions),
        EVQ_CASE(unnumbered_pages_are_exempt_and_unnamed_pages_fail),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}
