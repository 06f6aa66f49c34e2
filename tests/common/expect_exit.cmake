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
if(NOT "${status}" STREQUAL "${EXPECT_EXIT}")
  message(FATAL_ERROR "expected exit status ${EXPECT_EXIT}, got ${status}\noutput:\n${output}")
endif()
if(DEFINED EXPECT_OUTPUT AND NOT output MATCHES "${EXPECT_OUTPUT}")
  message(FATAL_ERROR "output does not match '${EXPECT_OUTPUT}':\n${output}")
endif()
message(STATUS "exit status ${status} as expected; output:\n${output}")
