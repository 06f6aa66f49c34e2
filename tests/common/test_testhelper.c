/* Tests of evq_test.h itself, part 1: checks that hold return 1 and record
 * nothing; REQUIRE stops a case. The failing side is proven by
 * selftest_failing.c, whose output ctest matches (see CMakeLists.txt). */
#include "evq_test.h"
#include "evq_thread.h"

EVQ_TEST(passing_checks_return_one_and_record_nothing)
{
    CHECK_INT(CHECK(1 + 1 == 2), ==, 1);
    CHECK_INT(CHECK_INT(-3, <, 2), ==, 1);
    CHECK_INT(CHECK_UINT(UINT64_MAX, >, 0), ==, 1);
    CHECK_INT(CHECK_STR("abc", ==, "abc"), ==, 1);
    CHECK_INT(CHECK_STR("abc", <, "abd"), ==, 1);
    CHECK_INT(CHECK_MEM("xyz", "xyz", 3), ==, 1);
    CHECK_INT(CHECK_OK(0), ==, 1);
    CHECK_INT(CHECK_ERR(EVQ_EPIPE, EVQ_EPIPE), ==, 1);
    CHECK_INT(evq_test_failures(), ==, 0);
}

/* Every check evaluates each argument exactly once: a macro that repeats an
 * argument (the first CHECK_INT did, to print it) would run a side effect
 * twice - a read, a pop, a counter - and test something else than written. */
static int calls;

static int count_call(int value)
{
    calls++;
    return value;
}

static const char *count_call_str(const char *value)
{
    calls++;
    return value;
}

EVQ_TEST(checks_evaluate_each_argument_once)
{
    calls = 0;
    CHECK(count_call(1));
    CHECK_INT(calls, ==, 1);
    calls = 0;
    CHECK_INT(count_call(2), ==, count_call(2));
    CHECK_INT(calls, ==, 2);
    calls = 0;
    CHECK_UINT(count_call(3), >=, count_call(3));
    CHECK_INT(calls, ==, 2);
    calls = 0;
    CHECK_STR(count_call_str("a"), <, count_call_str("b"));
    CHECK_INT(calls, ==, 2);
    calls = 0;
    CHECK_MEM(count_call_str("xy"), count_call_str("xy"), 2);
    CHECK_INT(calls, ==, 2);
    calls = 0;
    CHECK_OK(count_call(0));
    CHECK_ERR(count_call(EVQ_EPIPE), EVQ_EPIPE);
    CHECK_INT(calls, ==, 2);
}

static int reached_after_require;

static void require_then_mark(void)
{
    REQUIRE(1 == 1);
    reached_after_require = 1;
}

EVQ_TEST(require_that_holds_continues)
{
    reached_after_require = 0;
    require_then_mark();
    CHECK_INT(reached_after_require, ==, 1);
}

static void check_from_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < 1000; i++)
        CHECK_INT(i, >=, 0);
}

EVQ_TEST(checks_from_helper_threads_are_counted_safely)
{
    evq_thread threads[3];
    for (int i = 0; i < 3; i++)
        REQUIRE_OK(evq_thread_start(&threads[i], check_from_thread, NULL));
    for (int i = 0; i < 3; i++)
        CHECK_OK(evq_thread_join(&threads[i]));
    CHECK_INT(evq_test_failures(), ==, 0);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(passing_checks_return_one_and_record_nothing),
        EVQ_CASE(checks_evaluate_each_argument_once),
        EVQ_CASE(require_that_holds_continues),
        EVQ_CASE(checks_from_helper_threads_are_counted_safely),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}
