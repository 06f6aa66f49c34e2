# expect_exit.cmake - run a program and check its exit status and output,
# for programs whose exact status matters (ctest's WILL_FAIL only knows
# "non-zero"). Run by ctest as:
#   cmake -DPROGRAM=path [-DEMULATOR=wine] "-DARGS=a|b|c" -DEXPECT_EXIT=2
#         "-DEXPECT_OUTPUT=regex" -P expect_exit.cmake
# ARGS are separated by '|'; EXPECT_OUTPUT is matched against stdout and
# stderr together.
string(REPLACE "|" ";" arguments "${ARGS}")
set(command ${PROGRAM} ${arguments})
if(EMULATOR)
  set(command ${EMULATOR} ${command})
endif()
execute_process(COMMAND ${command} RESULT_VARIABLE status OUTPUT_VARIABLE out
                ERROR_VARIABLE err TIMEOUT 120 INPUT_FILE /dev/null)
set(output "${out}${err}")
# A known deviation of the platform (EvqHelpers.cmake) fails with a line
# that ctest's SKIP_REGULAR_EXPRESSION reports as a skip.
function(fail message)
  if(NOT "$ENV{EVQ_TEST_KNOWN_DEVIATION}" STREQUAL "")
    message(FATAL_ERROR "${message}\nSKIPPED: known deviation of $ENV{EVQ_TEST_KNOWN_DEVIATION}")
  endif()
  message(FATAL_ERROR "${message}")
endfunction()
if(NOT "${status}" STREQUAL "${EXPECT_EXIT}")
  fail("expected exit status ${EXPECT_EXIT}, got ${status}\noutput:\n${output}")
endif()
if(DEFINED EXPECT_OUTPUT AND NOT output MATCHES "${EXPECT_OUTPUT}")
  fail("output does not match '${EXPECT_OUTPUT}':\n${output}")
endif()
message(STATUS "exit status ${status} as expected; output:\n${output}")
