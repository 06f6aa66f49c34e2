/* Tests of evq_test.h itself, part 2: a program whose cases fail on purpose.
 * It is not registered case by case; ctest runs it whole and matches its
 * output (the file:line, the expression, the values, the summary) and its
 * exit status. See tests/common/CMakeLists.txt. */
#include "evq_test.h"

static int after_require;

static void fails_int(void)
{
    int a = 3, b = 4;
    CHECK_INT(a, ==, b);
}

static void fails_str(void)
{
    CHECK_STR("left", ==, "right");
}

static void fails_mem(void)
{
    CHECK_MEM("abcd", "abXd", 4);
}

static void fails_code(void)
{
    CHECK_ERR(EVQ_EPIPE, EVQ_ECONNRESET);
}

static void fails_require(void)
{
    REQUIRE(1 == 2);
    after_require = 1;
}

static void reports_require_skip(void)
{
    /* Runs after fails_require: fails if REQUIRE did not return. */
    CHECK_INT(after_require, ==, 0);
}

static void passes(void)
{
    CHECK(1);
}

static void skips(void)
{
    SKIP("no %s on this machine", "widget");
    CHECK(!"SKIP returns from the case");
}

static void fails_then_skips(void)
{
    CHECK_INT(1, ==, 2);
    SKIP("too late: a failure counts");
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        {"fails_int", fails_int},
        {"fails_str", fails_str},
        {"fails_mem", fails_mem},
        {"fails_code", fails_code},
        {"fails_require", fails_require},
        {"reports_require_skip", reports_require_skip},
        {"passes", passes},
        {"skips", skips},
        {"fails_then_skips", fails_then_skips},
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}
