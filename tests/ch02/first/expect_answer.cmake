# expect_answer.cmake - run a first-contact program and compare what it
# prints with the delay server's answer, byte for byte:
#   cmake -DPROGRAM=path [-DEMULATOR=wine] -DDELAY=150 -DMESSAGE=hi -P expect_answer.cmake
# (MESSAGE: characters that need no percent-encoding in a URL path.)
string(ASCII 13 10 crlf)
string(LENGTH "${MESSAGE}" length)
set(expected "HTTP/1.1 200 OK${crlf}Content-Type: text/plain${crlf}Content-Length: ${length}${crlf}")
string(APPEND expected "Connection: close${crlf}${crlf}${MESSAGE}")

set(command ${PROGRAM} ${DELAY} ${MESSAGE})
if(EMULATOR)
  set(command ${EMULATOR} ${command})
endif()
# To a file, read back as hex: execute_process's OUTPUT_VARIABLE turns
# "\r\n" into "\n", and the carriage returns are part of the answer.
get_filename_component(name "${PROGRAM}" NAME_WE)
set(answer_file "${CMAKE_CURRENT_BINARY_DIR}/${name}-${DELAY}.out")
execute_process(COMMAND ${command} RESULT_VARIABLE status OUTPUT_FILE "${answer_file}"
                ERROR_VARIABLE err TIMEOUT 60 INPUT_FILE /dev/null)
message("stderr: ${err}")
if(NOT status EQUAL 0)
  message(FATAL_ERROR "exit status ${status}, expected 0")
endif()
file(READ "${answer_file}" out_hex HEX)
file(REMOVE "${answer_file}")
string(HEX "${expected}" expected_hex)
if(NOT out_hex STREQUAL expected_hex)
  message(FATAL_ERROR "the answer differs:\n  got (hex)      ${out_hex}\n  expected (hex) ${expected_hex}")
endif()
# One answer, then the end: one wait for the bytes and at most one more for
# the close (IOCP: one completion each), a few more if the kernel splits the
# bytes. A program that spins (waits that return at once, with nothing to
# read) makes hundreds.
if(NOT err MATCHES "after ([0-9]+) ")
  message(FATAL_ERROR "the program did not say how many waits it took")
endif()
if(CMAKE_MATCH_1 LESS 1 OR CMAKE_MATCH_1 GREATER 4)
  message(FATAL_ERROR "${CMAKE_MATCH_1} waits for one answer: expected 1 to 4")
endif()
message("the answer, byte for byte: ${length} bytes of body after ${DELAY} ms")
