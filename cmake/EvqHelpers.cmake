# EvqHelpers.cmake - how a chapter, an appendix or common/ declares its
# libraries, programs and tests in a few lines.
#
#   evq_chapter(ch02
#     INCLUDE_DIR include
#     SOURCES        src/evq.c             # portable code, every backend
#     POSIX_SOURCES  src/tcp_posix.c       # epoll, kqueue backends
#     WINDOWS_SOURCES src/tcp_win.c        # iocp backend
#     EPOLL_SOURCES  src/poll_epoll.c
#     KQUEUE_SOURCES src/poll_kqueue.c
#     IOCP_SOURCES   src/poll_iocp.c
#     URING_SOURCES  .../poll_uring.c .../tcp_uring.c) # appendix C: its own socket file too
#   -> static libraries ch02_epoll, ch02_kqueue, ch02_iocp (those this machine
#      can build), and ch02_BACKENDS = "epoll;kqueue" in the caller's scope.
#
#   evq_chapter_tests(ch02 SOURCES test_oneshot.c test_api.c [LIBS ...] [TIMEOUT s])
#   -> one executable per backend and source, one ctest test per EVQ_TEST case:
#      ch02.epoll.oneshot_rearm, labels ch02 and epoll.
#
#   evq_chapter_programs(ch02 NAME demo SOURCES demo/main.c)
#   -> ch02_demo_epoll, ch02_demo_kqueue, ...
#
#   evq_add_test_program(common_test_clock PART common VARIANT clock SOURCES test_clock.c)
#   -> common.clock.<case> tests, labels common and clock.
#
#   evq_add_expect_exit_test(common.delayserver.cli_help PROGRAM delayserver EXIT 0
#                            OUTPUT "Usage: .*" ARGS --help LABELS common delayserver)
#   -> runs the program through tests/common/expect_exit.cmake, which checks its
#      exact exit status and its output (ctest alone tells zero from non-zero).
#
#   evq_add_bench(ch03_bench_epoll PART ch03 VARIANT epoll NAME throughput SOURCES ... [ARGS ...])
#   -> one ctest test ch03.epoll.bench_throughput, labels ch03, epoll and bench
#      (the default test preset excludes the label bench).

include_guard(GLOBAL)

set(EVQ_ALL_BACKENDS epoll kqueue iocp uring)

# ---- compiler settings for everything in the project -------------------------
macro(evq_setup_compiler)
  if(CMAKE_C_COMPILER_ID MATCHES "GNU|Clang")
    add_compile_options(-Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes
                        -Wmissing-prototypes -Wno-unused-parameter)
    if(EVQ_WERROR)
      add_compile_options(-Werror)
    endif()
  elseif(MSVC)
    add_compile_options(/W4 /experimental:c11atomics)
    if(EVQ_WERROR)
      add_compile_options(/WX)
    endif()
  endif()
  if(WIN32)
    # Windows 10 API level: WSAPoll, InitOnce, SRW locks, CancelIoEx,
    # GetQueuedCompletionStatusEx. WIN32_LEAN_AND_MEAN keeps windows.h from
    # pulling in the old winsock.h, which clashes with winsock2.h.
    add_compile_definitions(_WIN32_WINNT=0x0A00 WIN32_LEAN_AND_MEAN NOMINMAX)
    if(MINGW)
      # mingw-w64's own C99 printf family (%zu, %lld) instead of msvcrt's.
      add_compile_definitions(__USE_MINGW_ANSI_STDIO=1)
    endif()
  endif()
  if(EVQ_SANITIZE STREQUAL "address")
    add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all
                        -fno-omit-frame-pointer)
    add_link_options(-fsanitize=address,undefined)
  elseif(EVQ_SANITIZE STREQUAL "thread")
    add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
    add_link_options(-fsanitize=thread)
  elseif(NOT EVQ_SANITIZE STREQUAL "")
    message(FATAL_ERROR "EVQ_SANITIZE must be empty, 'address' or 'thread'")
  endif()
endmacro()
evq_setup_compiler()

# ---- backends ------------------------------------------------------------------
function(evq_available_backends out)
  set(backends "")
  if(CMAKE_SYSTEM_NAME STREQUAL "Linux")
    list(APPEND backends epoll)
  endif()
  if(EVQ_HAVE_KQUEUE)
    list(APPEND backends kqueue)
  endif()
  if(WIN32)
    list(APPEND backends iocp)
  endif()
  if(EVQ_HAVE_URING)
    list(APPEND backends uring)
  endif()
  set(${out} "${backends}" PARENT_SCOPE)
endfunction()

# Link what a backend needs from the system.
function(evq_link_backend_system target backend)
  if(backend STREQUAL "kqueue" AND EVQ_KQUEUE_LIBRARY)
    target_link_libraries(${target} PUBLIC ${EVQ_KQUEUE_LIBRARY})
  endif()
  if(backend STREQUAL "uring")
    target_link_libraries(${target} PUBLIC evq_uring) # appendix C's layer: rings, SQEs, CQEs
  endif()
  if(WIN32)
    target_link_libraries(${target} PUBLIC ws2_32 mswsock)
  endif()
endfunction()

# ---- tests -----------------------------------------------------------------------
# The cases of a test source: every line that starts with EVQ_TEST(name).
# EVQ_TEST_POSIX(name), EVQ_TEST_LINUX(name) and EVQ_TEST_WINDOWS(name) mark
# cases that exist only on those systems (the C file puts them under the
# matching #ifdef); they are registered only where they are compiled.
function(evq_test_cases out)
  set(cases "")
  foreach(src IN LISTS ARGN)
    get_filename_component(path "${src}" ABSOLUTE)
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${path}")
    file(STRINGS "${path}" lines REGEX "^EVQ_TEST(_POSIX|_LINUX|_WINDOWS)?\\([A-Za-z0-9_]+\\)")
    foreach(line IN LISTS lines)
      string(REGEX REPLACE "^EVQ_TEST[A-Z_]*\\(([A-Za-z0-9_]+)\\).*" "\\1" name "${line}")
      string(REGEX MATCH "^EVQ_TEST[A-Z_]*" only "${line}")
      string(REPLACE "EVQ_TEST" "" only "${only}")
      if((only STREQUAL "_POSIX" AND WIN32)
         OR (only STREQUAL "_LINUX" AND NOT CMAKE_SYSTEM_NAME STREQUAL "Linux")
         OR (only STREQUAL "_WINDOWS" AND NOT WIN32))
        continue()
      endif()
      list(APPEND cases "${name}")
    endforeach()
  endforeach()
  set(${out} "${cases}" PARENT_SCOPE)
endfunction()

# Properties every test gets: labels, a timeout, under Wine the prefix, and
# for a known deviation of the platform its reason (see below).
function(evq_set_test_properties test)
  cmake_parse_arguments(arg "" "TIMEOUT" "LABELS;ENVIRONMENT" ${ARGN})
  if(NOT arg_TIMEOUT)
    set(arg_TIMEOUT ${EVQ_TEST_TIMEOUT})
  endif()
  set(environment ${arg_ENVIRONMENT})
  get_property(deviation GLOBAL PROPERTY EVQ_DEVIATION_${test})
  if(deviation)
    list(APPEND environment "EVQ_TEST_KNOWN_DEVIATION=${deviation}")
    list(APPEND arg_LABELS deviation)
    # evq_test_main() exits 77 and tests/common/expect_exit.cmake prints the
    # line, each only when the test failed.
    set_tests_properties(${test} PROPERTIES SKIP_RETURN_CODE 77
                         SKIP_REGULAR_EXPRESSION "SKIPPED: known deviation of ")
    set_property(GLOBAL APPEND PROPERTY EVQ_DEVIATIONS_USED "${test}")
  endif()
  if(EVQ_SANITIZE STREQUAL "address")
    list(APPEND environment
         "ASAN_OPTIONS=halt_on_error=1:abort_on_error=0:detect_leaks=1:detect_stack_use_after_return=1"
         "UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1")
  elseif(EVQ_SANITIZE STREQUAL "thread")
    list(APPEND environment "TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1")
  endif()
  # 77: every case of the program skipped (SKIP() in evq_test.h: this machine
  # lacks what the case needs, such as io_uring); ctest reports "Skipped".
  set_tests_properties(${test} PROPERTIES LABELS "${arg_LABELS}" TIMEOUT ${arg_TIMEOUT}
                                          SKIP_RETURN_CODE 77)
  if(CMAKE_CROSSCOMPILING AND WIN32 AND EVQ_WINE_PREFIX)
    list(APPEND environment ${EVQ_WINE_ENVIRONMENT})
    set_tests_properties(${test} PROPERTIES FIXTURES_REQUIRED wine)
  endif()
  if(environment)
    set_tests_properties(${test} PROPERTIES ENVIRONMENT "${environment}")
  endif()
endfunction()

# ---- known deviations ----------------------------------------------------------
# evq_load_known_deviations(<file> <who>) reads a provider's list of known
# deviations: one "<ctest test name> <reason>" per line ('#' starts a comment;
# no ';' in a reason, CMake's list separator).
# Each test it names still runs; evq_set_test_properties() gives it the reason
# in its environment (EVQ_TEST_KNOWN_DEVIATION="<who>: <reason>"), the label
# deviation, and SKIP_RETURN_CODE 77 and a SKIP_REGULAR_EXPRESSION, so that a
# failure is reported as a skip, the reason in its output (evq_test.h). Call
# it before the tests are added, and
# evq_check_known_deviations() after: in a build of every part, a listed name
# that no test has is an error (a renamed case must not silently leave the
# list).
function(evq_load_known_deviations file who)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${file}")
  file(STRINGS "${file}" lines)
  foreach(line IN LISTS lines)
    if(line MATCHES "^[ \t]*(#|$)")
      continue()
    endif()
    if(NOT line MATCHES "^([A-Za-z0-9_.-]+)[ \t]+([^ \t].*)$")
      message(FATAL_ERROR "${file}: not \"<test name> <reason>\": ${line}")
    endif()
    set_property(GLOBAL PROPERTY EVQ_DEVIATION_${CMAKE_MATCH_1} "${who}: ${CMAKE_MATCH_2}")
    set_property(GLOBAL APPEND PROPERTY EVQ_DEVIATIONS "${CMAKE_MATCH_1}")
  endforeach()
  set_property(GLOBAL PROPERTY EVQ_DEVIATIONS_FILE "${file}")
endfunction()

function(evq_check_known_deviations)
  get_property(listed GLOBAL PROPERTY EVQ_DEVIATIONS)
  get_property(used GLOBAL PROPERTY EVQ_DEVIATIONS_USED)
  get_property(file GLOBAL PROPERTY EVQ_DEVIATIONS_FILE)
  foreach(test IN LISTS listed)
    if(EVQ_PARTS STREQUAL "" AND NOT test IN_LIST used)
      message(FATAL_ERROR "${file}: no test is named ${test}")
    endif()
  endforeach()
  list(LENGTH listed count)
  if(count GREATER 0)
    message(STATUS "evq: ${count} known deviations from ${file} (ctest -L deviation)")
  endif()
endfunction()

# ---- a backend's runner ----------------------------------------------------------
# A backend can name a program that every test and bench of that backend runs
# under (property EVQ_BACKEND_RUNNER_<backend>): appendix C registers
# uring_run, which exits 77 (ctest: "Skipped") with the reason where the
# kernel refuses io_uring, and runs the test otherwise. evq_backend_runner
# gives the command a test of <variant> runs under: that runner, or the
# cross-compiling emulator (Wine), or nothing; and in <skip_regex> what the
# runner prints when it skips, for tests that check an exit status of their
# own (expect_exit.cmake), whose output ctest must then read as a skip.
function(evq_backend_runner variant out skip_regex)
  get_property(runner GLOBAL PROPERTY EVQ_BACKEND_RUNNER_${variant})
  get_property(skip GLOBAL PROPERTY EVQ_BACKEND_RUNNER_SKIP_${variant})
  if(NOT runner)
    set(runner "${CMAKE_CROSSCOMPILING_EMULATOR}")
  endif()
  set(${out} "${runner}" PARENT_SCOPE)
  set(${skip_regex} "${skip}" PARENT_SCOPE)
endfunction()

# The add_test command for a built program: under its variant's runner, if
# it has one (add_test adds the cross-compiling emulator by itself).
function(evq_test_command variant target out)
  get_property(runner GLOBAL PROPERTY EVQ_BACKEND_RUNNER_${variant})
  if(runner)
    set(${out} ${runner} "$<TARGET_FILE:${target}>" PARENT_SCOPE)
  else()
    set(${out} ${target} PARENT_SCOPE)
  endif()
endfunction()

# evq_add_test_program(<target> PART <part> VARIANT <variant> SOURCES ...
#                      [LIBS ...] [LABELS ...] [TIMEOUT s] [ENVIRONMENT ...])
function(evq_add_test_program target)
  cmake_parse_arguments(arg "" "PART;VARIANT;TIMEOUT" "SOURCES;LIBS;LABELS;ENVIRONMENT" ${ARGN})
  if(NOT arg_PART OR NOT arg_VARIANT OR NOT arg_SOURCES)
    message(FATAL_ERROR "evq_add_test_program(${target}): PART, VARIANT and SOURCES are required")
  endif()
  add_executable(${target} ${arg_SOURCES})
  target_link_libraries(${target} PRIVATE ${arg_LIBS} evq_common)
  evq_test_cases(cases ${arg_SOURCES})
  if(NOT cases)
    message(FATAL_ERROR "${target}: no EVQ_TEST(name) lines in ${arg_SOURCES}")
  endif()
  set(labels ${arg_PART} ${arg_VARIANT} ${arg_LABELS})
  list(REMOVE_DUPLICATES labels)
  evq_test_command(${arg_VARIANT} ${target} command)
  foreach(case IN LISTS cases)
    set(test "${arg_PART}.${arg_VARIANT}.${case}")
    add_test(NAME ${test} COMMAND ${command} ${case})
    evq_set_test_properties(${test} LABELS ${labels} TIMEOUT ${arg_TIMEOUT}
                            ENVIRONMENT ${arg_ENVIRONMENT})
  endforeach()
endfunction()

# evq_add_expect_exit_test(<test> PROGRAM <target> EXIT <status> [OUTPUT <regex>]
#                          [ARGS ...] [LABELS ...] [ENVIRONMENT ...])
# The regex is matched against stdout and stderr together; neither it nor an
# argument may contain ';' (CMake would split it) and no argument may contain
# '|' (expect_exit.cmake's separator).
function(evq_add_expect_exit_test test)
  cmake_parse_arguments(arg "" "PROGRAM;EXIT;OUTPUT" "ARGS;LABELS;ENVIRONMENT" ${ARGN})
  string(REPLACE ";" "|" arguments "${arg_ARGS}")
  add_test(NAME ${test}
           COMMAND ${CMAKE_COMMAND} "-DPROGRAM=$<TARGET_FILE:${arg_PROGRAM}>"
                   "-DEMULATOR=${CMAKE_CROSSCOMPILING_EMULATOR}" "-DARGS=${arguments}"
                   "-DEXPECT_EXIT=${arg_EXIT}" "-DEXPECT_OUTPUT=${arg_OUTPUT}"
                   -P "${PROJECT_SOURCE_DIR}/tests/common/expect_exit.cmake")
  evq_set_test_properties(${test} LABELS ${arg_LABELS} ENVIRONMENT ${arg_ENVIRONMENT})
endfunction()

# evq_add_bench(<target> PART <part> VARIANT <variant> NAME <name> SOURCES ...
#               [LIBS ...] [ARGS ...] [TIMEOUT s])
function(evq_add_bench target)
  cmake_parse_arguments(arg "" "PART;VARIANT;NAME;TIMEOUT" "SOURCES;LIBS;ARGS;LABELS" ${ARGN})
  if(NOT arg_TIMEOUT)
    set(arg_TIMEOUT 600)
  endif()
  if(NOT TARGET ${target})
    add_executable(${target} ${arg_SOURCES})
    target_link_libraries(${target} PRIVATE ${arg_LIBS} evq_common)
  endif()
  set(test "${arg_PART}.${arg_VARIANT}.bench_${arg_NAME}")
  evq_test_command(${arg_VARIANT} ${target} command)
  add_test(NAME ${test} COMMAND ${command} ${arg_ARGS})
  set(labels ${arg_PART} ${arg_VARIANT} bench ${arg_LABELS})
  list(REMOVE_DUPLICATES labels)
  evq_set_test_properties(${test} LABELS ${labels} TIMEOUT ${arg_TIMEOUT})
  set_tests_properties(${test} PROPERTIES RUN_SERIAL TRUE)
endfunction()

# ---- chapters --------------------------------------------------------------------
function(evq_chapter prefix)
  set(lists SOURCES POSIX_SOURCES WINDOWS_SOURCES EPOLL_SOURCES KQUEUE_SOURCES IOCP_SOURCES
            URING_SOURCES LIBS)
  cmake_parse_arguments(arg "" "INCLUDE_DIR" "${lists}" ${ARGN})
  if(NOT arg_INCLUDE_DIR)
    set(arg_INCLUDE_DIR include)
  endif()
  evq_available_backends(available)
  set(built "")
  foreach(backend IN LISTS available)
    string(TOUPPER ${backend} upper)
    if(NOT arg_${upper}_SOURCES)
      continue()
    endif()
    if(backend STREQUAL "iocp")
      set(platform_sources ${arg_WINDOWS_SOURCES})
    elseif(backend STREQUAL "uring")
      set(platform_sources "") # its URING_SOURCES bring their own socket file (tcp_uring.c)
    else()
      set(platform_sources ${arg_POSIX_SOURCES})
    endif()
    set(lib ${prefix}_${backend})
    add_library(${lib} STATIC ${arg_SOURCES} ${platform_sources} ${arg_${upper}_SOURCES})
    target_include_directories(${lib} PUBLIC "${CMAKE_CURRENT_SOURCE_DIR}/${arg_INCLUDE_DIR}"
                               PRIVATE "${CMAKE_CURRENT_SOURCE_DIR}/src")
    target_compile_definitions(${lib} PUBLIC EVQ_BACKEND_${upper}=1
                               EVQ_BACKEND_NAME="${backend}")
    target_link_libraries(${lib} PUBLIC evq_common ${arg_LIBS})
    evq_link_backend_system(${lib} ${backend})
    list(APPEND built ${backend})
  endforeach()
  set(${prefix}_BACKENDS "${built}" PARENT_SCOPE)
  set_property(GLOBAL PROPERTY EVQ_${prefix}_BACKENDS "${built}")
endfunction()

function(evq_chapter_tests prefix)
  cmake_parse_arguments(arg "" "TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  get_property(backends GLOBAL PROPERTY EVQ_${prefix}_BACKENDS)
  foreach(backend IN LISTS backends)
    foreach(src IN LISTS arg_SOURCES)
      get_filename_component(stem "${src}" NAME_WE)
      evq_add_test_program(${prefix}_${backend}_${stem} PART ${prefix} VARIANT ${backend}
                           SOURCES ${src} LIBS ${prefix}_${backend} ${arg_LIBS}
                           LABELS ${arg_LABELS} TIMEOUT ${arg_TIMEOUT})
    endforeach()
  endforeach()
endfunction()

function(evq_chapter_programs prefix)
  cmake_parse_arguments(arg "" "NAME" "SOURCES;LIBS" ${ARGN})
  get_property(backends GLOBAL PROPERTY EVQ_${prefix}_BACKENDS)
  foreach(backend IN LISTS backends)
    add_executable(${prefix}_${arg_NAME}_${backend} ${arg_SOURCES})
    target_link_libraries(${prefix}_${arg_NAME}_${backend} PRIVATE ${prefix}_${backend}
                          ${arg_LIBS})
  endforeach()
endfunction()

# ---- Wine ----------------------------------------------------------------------
# With the mingw-w64 toolchain, every test runs under Wine in a prefix inside
# the build directory. A fixture starts one persistent wineserver first (and
# boots the prefix with its output sent to a file): Wine's helper processes
# then do not inherit a test's pipes, and each test starts in ~50 ms instead
# of ~3 s.
function(evq_setup_wine_fixture)
  if(NOT (CMAKE_CROSSCOMPILING AND WIN32 AND CMAKE_CROSSCOMPILING_EMULATOR))
    return()
  endif()
  find_program(EVQ_WINESERVER NAMES wineserver64 wineserver PATHS /usr/lib/wine NO_CACHE)
  set(prefix "${CMAKE_BINARY_DIR}/wineprefix")
  set(EVQ_WINE_PREFIX "${prefix}" PARENT_SCOPE)
  set(environment "WINEPREFIX=${prefix}" "WINEDEBUG=-all" "WINEDLLOVERRIDES=mscoree,mshtml=")
  set(EVQ_WINE_ENVIRONMENT "${environment}" PARENT_SCOPE)
  set(script "${PROJECT_SOURCE_DIR}/cmake/WineFixture.cmake")
  list(GET CMAKE_CROSSCOMPILING_EMULATOR 0 wine)
  add_test(NAME wine.setup
           COMMAND ${CMAKE_COMMAND} -DACTION=setup "-DWINE=${wine}" "-DWINESERVER=${EVQ_WINESERVER}"
                   "-DPREFIX=${prefix}" -P "${script}")
  set_tests_properties(wine.setup PROPERTIES FIXTURES_SETUP wine TIMEOUT 300 LABELS "wine")
  add_test(NAME wine.cleanup
           COMMAND ${CMAKE_COMMAND} -DACTION=cleanup "-DWINESERVER=${EVQ_WINESERVER}"
                   "-DPREFIX=${prefix}" -P "${script}")
  set_tests_properties(wine.cleanup PROPERTIES FIXTURES_CLEANUP wine TIMEOUT 60 LABELS "wine")
endfunction()
