/* Tests of evq_args.h: exactly a number in range, and nothing else. */
#include "evq_args.h"
#include "evq_test.h"

#include <limits.h>

EVQ_TEST(ulong_accepts_a_number_in_range)
{
    unsigned long value = 0;
    CHECK(evq_parse_ulong("42", 1, 100, &value));
    CHECK_UINT(value, ==, 42);
    CHECK(evq_parse_ulong("1", 1, 100, &value));
    CHECK_UINT(value, ==, 1);
    CHECK(evq_parse_ulong("100", 1, 100, &value));
    CHECK_UINT(value, ==, 100);
    CHECK(evq_parse_ulong("0", 0, 0, &value));
    CHECK_UINT(value, ==, 0);
}

EVQ_TEST(ulong_refuses_what_strtoul_would_bend)
{
    unsigned long value = 7;
    const char *bad[] = {"", " 5", "+5", "-1", "5x", "5 ", "x", "0x10", "1e3"};
    for (size_t i = 0; i < EVQ_COUNT(bad); i++) {
        if (!CHECK(!evq_parse_ulong(bad[i], 0, ULONG_MAX, &value)))
            evq_test_note("accepted \"%s\"", bad[i]);
    }
    CHECK(!evq_parse_ulong(NULL, 0, 10, &value));
    CHECK_UINT(value, ==, 7); /* untouched on failure */
}

EVQ_TEST(ulong_refuses_out_of_range_and_overflow)
{
    unsigned long value = 7;
    CHECK(!evq_parse_ulong("0", 1, 100, &value));
    CHECK(!evq_parse_ulong("101", 1, 100, &value));
    /* More digits than any unsigned long holds: ERANGE, not a wrapped value. */
    CHECK(!evq_parse_ulong("99999999999999999999999999", 0, ULONG_MAX, &value));
    CHECK_UINT(value, ==, 7);
}

EVQ_TEST(double_accepts_above_the_bound_up_to_the_maximum)
{
    double value = 0;
    CHECK(evq_parse_double("0.05", 0.0, 10.0, &value));
    CHECK(value > 0.049 && value < 0.051);
    CHECK(evq_parse_double("10", 0.0, 10.0, &value));
    CHECK(value == 10.0);
    CHECK(evq_parse_double("1e-3", 0.0, 10.0, &value));
    CHECK(value > 0.0009 && value < 0.0011);
}

EVQ_TEST(double_refuses_zero_junk_nan_and_infinity)
{
    double value = 3.0;
    const char *bad[] = {"", "0", "0.0", "-1", "10.5", "1x", "nan", "inf", "1e999", "abc"};
    for (size_t i = 0; i < EVQ_COUNT(bad); i++) {
        if (!CHECK(!evq_parse_double(bad[i], 0.0, 10.0, &value)))
            evq_test_note("accepted \"%s\"", bad[i]);
    }
    CHECK(!evq_parse_double(NULL, 0.0, 10.0, &value));
    CHECK(value == 3.0);
}

int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {
        EVQ_CASE(ulong_accepts_a_number_in_range),
        EVQ_CASE(ulong_refuses_what_strtoul_would_bend),
        EVQ_CASE(ulong_refuses_out_of_range_and_overflow),
        EVQ_CASE(double_accepts_above_the_bound_up_to_the_maximum),
        EVQ_CASE(double_refuses_zero_junk_nan_and_infinity),
    };
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}
