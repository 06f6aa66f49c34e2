/* Tests of evq_log.h: levels, the line format, whole lines from many threads. */
#include "evq_log.h"
#include "evq_test.h"
#include "evq_thread.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

EVQ_TEST(levels_parse_by_name_and_number)
{
    CHECK_INT(evq_log_parse_level("error"), ==, EVQ_LOG_ERROR);
    CHECK_INT(evq_log_parse_level("warn"), ==, EVQ_LOG_WARN);
    CHECK_INT(evq_log_parse_level("INFO"), ==, EVQ_LOG_INFO);
    CHECK_INT(evq_log_parse_level("debug"), ==, EVQ_LOG_DEBUG);
    CHECK_INT(evq_log_parse_level("4"), ==, EVQ_LOG_TRACE);
    CHECK_INT(evq_log_parse_level("verbose"), ==, -1);
    CHECK_INT(evq_log_parse_level("5"), ==, -1);
    CHECK_INT(evq_log_parse_level(""), ==, -1);
    CHECK_INT(evq_log_parse_level(NULL), ==, -1);
}

EVQ_TEST(level_filters_lines)
{
    evq_log_set_level(EVQ_LOG_INFO);
    CHECK(evq_log_enabled(EVQ_LOG_ERROR));
    CHECK(evq_log_enabled(EVQ_LOG_INFO));
    CHECK(!evq_log_enabled(EVQ_LOG_DEBUG));
    evq_log_set_level(EVQ_LOG_TRACE);
    CHECK(evq_log_enabled(EVQ_LOG_TRACE));
}

EVQ_TEST(thread_name_defaults_to_main_and_is_truncated)
{
    CHECK_STR(evq_log_thread_name(), ==, "main");
    evq_log_set_thread_name("a-very-long-thread-name");
    CHECK_STR(evq_log_thread_name(), ==, "a-very-long-thr");
}

#define LINES_PER_THREAD 200

static void log_lines(void *arg)
{
    evq_log_set_thread_name(arg);
    for (int i = 0; i < LINES_PER_THREAD; i++)
        EVQ_INFO("line %d from %s", i, (const char *)arg);
}

/* Check one line: "<sec>.<6 digits> <LEVEL> [<name>] test_log.c:<n>: <text>". */
static int well_formed(const char *line, const char *level)
{
    const char *p = line;
    if (*p < '0' || *p > '9')
        return 0;
    while (*p >= '0' && *p <= '9')
        p++;
    if (*p++ != '.')
        return 0;
    for (int i = 0; i < 6; i++, p++) {
        if (*p < '0' || *p > '9')
            return 0;
    }
    if (*p++ != ' ' || strncmp(p, level, strlen(level)) != 0)
        return 0;
    p = strchr(p, '[');
    if (!p || !strchr(p, ']'))
        return 0;
    p = strstr(p, "] test_log.c:");
    return p != NULL && strstr(p, ": ") != NULL;
}

EVQ_TEST(lines_are_whole_and_formatted_from_many_threads)
{
    const char *path = "common_test_log_lines.txt";
    REQUIRE(freopen(path, "w", stderr) != NULL);
    evq_log_set_level(EVQ_LOG_INFO);
    EVQ_INFO("hello %d", 42);
    EVQ_DEBUG("not shown at level info");
    evq_thread a, b;
    REQUIRE_OK(evq_thread_start(&a, log_lines, "alpha"));
    REQUIRE_OK(evq_thread_start(&b, log_lines, "beta"));
    CHECK_OK(evq_thread_join(&a));
    CHECK_OK(evq_thread_join(&b));
    fflush(stderr);

    FILE *file = fopen(path, "r");
    REQUIRE(file != NULL);
    char line[1200];
    int total = 0, alpha = 0, beta = 0, hello = 0;
    while (fgets(line, sizeof line, file)) {
        total++;
        CHECK(strchr(line, '\n') != NULL);
        if (!CHECK(well_formed(line, "INFO")))
            evq_test_note("bad line: %s", line);
        alpha += strstr(line, "[alpha]") && strstr(line, "from alpha\n");
        beta += strstr(line, "[beta]") && strstr(line, "from beta\n");
        hello += strstr(line, "[main]") && strstr(line, ": hello 42\n");
    }
    fclose(file);
    remove(path);
    CHECK_INT(total, ==, 1 + 2 * LINES_PER_THREAD);
    CHECK_INT(alpha, ==, LINES_PER_THREAD);
    CHECK_INT(beta, ==, LINES_PER_THREAD);
    CHECK_INT(hello, ==, 1);
}

EVQ_TEST(long_message_is_truncated_with_a_mark)
{
    const char *path = "common_test_log_long.txt";
    REQUIRE(freopen(path, "w", stderr) != NULL);
    evq_log_set_level(EVQ_LOG_WARN);
    char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    EVQ_WARN("%s", big);
    fflush(stderr);
    FILE *file = fopen(path, "r");
    REQUIRE(file != NULL);
    char line[4096];
    REQUIRE(fgets(line, sizeof line, file) != NULL);
    fclose(file);
    remove(path);
    size_t len = strlen(line);
    CHECK_UINT(len, <, 1100);
    CHECK(len >= 4 && strcmp(line + len - 4, "...\n") == 0);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(levels_parse_by_name_and_number),
        EVQ_CASE(level_filters_lines),
        EVQ_CASE(thread_name_defaults_to_main_and_is_truncated),
        EVQ_CASE(lines_are_whole_and_formatted_from_many_threads),
        EVQ_CASE(long_message_is_truncated_with_a_mark),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}
