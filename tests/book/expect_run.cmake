# expect_run.cmake - run the excerpt checker and check its exit status and
# output (ctest's WILL_FAIL only knows "non-zero", PASS_REGULAR_EXPRESSION
# ignores the status). Run by ctest as:
#   cmake -DPROGRAM=path "-DARGS=a|b|c" -DEXPECT_EXIT=1 "-DEXPECT_OUTPUT=regex" -P expect_run.cmake
# ARGS are separated by '|'; EXPECT_OUTPUT is matched against stdout and
# stderr together. With -DSKIP_IF=regex, output that matches it ends the
# script with success and the output shown (the test's
# SKIP_REGULAR_EXPRESSION then reports it as skipped).
string(REPLACE "|" ";" arguments "${ARGS}")
execute_process(COMMAND "${PROGRAM}" ${arguments} RESULT_VARIABLE status OUTPUT_VARIABLE out
                ERROR_VARIABLE err TIMEOUT 60)
set(output "${err}${out}")
message("${output}")
if(DEFINED SKIP_IF AND output MATCHES "${SKIP_IF}")
  return()
endif()
if(NOT "${status}" STREQUAL "${EXPECT_EXIT}")
  message(FATAL_ERROR "expected exit status ${EXPECT_EXIT}, got ${status}")
endif()
if(NOT output MATCHES "${EXPECT_OUTPUT}")
  message(FATAL_ERROR "the output does not match '${EXPECT_OUTPUT}'")
endif()
