#include "uring_test.h"
EVQ_TEST(placeholder) {}
int main(int argc, char **argv)
{
    static const evq_test_case cases[] = {EVQ_CASE(placeholder)};
    return evq_test_main(argc, argv, cases, EVQ_COUNT(cases));
}
