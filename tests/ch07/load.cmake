# evq_load's tests (chapters/07-raw-loop/load), included by CMakeLists.txt.
#
# In-process, every backend (Wine too): the generator against peers whose
# faults are known - an echo peer that corrupts a byte, falls silent or hangs
# up, the delay server (HTTP; and not an echo server) - and against chapter
# 7's server (both designs), asserting counts and exit statuses, never speed.
foreach(backend IN LISTS ch07_backends)
  evq_add_test_program(ch07_${backend}_test_load PART ch07 VARIANT ${backend}
                       SOURCES test_load.c
                       LIBS ch07_load_core_${backend} ch07_server_core_${backend} evq_delayserver
                       TIMEOUT 120)
endforeach()

# The program itself (Linux: the scripts start servers as processes and stop
# them with SIGTERM): exit statuses and verdict lines against the raw epoll
# echo server of the benchmark and the delay server's CLI.
if(CMAKE_SYSTEM_NAME STREQUAL "Linux" AND TARGET ch07_bench_epoll_echo AND TARGET delayserver)
  set(ch07_with_server "${PROJECT_SOURCE_DIR}/chapters/07-raw-loop/bench/with_server.sh")
  # ch07_load_cli_test(<backend> <case> <status> <regex> SERVER ... CLIENT ...)
  function(ch07_load_cli_test backend name status regex)
    cmake_parse_arguments(arg "" "" "SERVER;CLIENT" ${ARGN})
    add_test(NAME ch07.${backend}.${name}
             COMMAND bash "${ch07_with_server}" ${status} "${regex}" ${arg_SERVER}
                     -- $<TARGET_FILE:ch07_load_${backend}> --port {port} ${arg_CLIENT})
    evq_set_test_properties(ch07.${backend}.${name} LABELS ch07 ${backend} TIMEOUT 120)
  endfunction()
  set(epoll_echo $<TARGET_FILE:ch07_bench_epoll_echo> --port 0 --threads 1)
  set(delay $<TARGET_FILE:delayserver> --port 0)
  foreach(backend IN LISTS ch07_backends)
    ch07_load_cli_test(${backend} load_cli_echo_100_connections 0
                       "verdict: OK - 10000 round trips, every echo checked"
                       SERVER ${epoll_echo} CLIENT --connections 100 --round-trips 100)
    ch07_load_cli_test(${backend} load_cli_echo_timed_pipelined 0
                       "p99.9 .*\nverdict: OK - [0-9]+ round trips, every echo checked"
                       SERVER ${epoll_echo}
                       CLIENT --connections 20 --depth 8 --size 1000 --seconds 0.3 --warmup 0.1)
    ch07_load_cli_test(${backend} load_cli_http_counted 0
                       "statuses +200: 60 .*\nverdict: OK - 60 requests, every answer 200"
                       SERVER ${delay} CLIENT --http /0/hi --connections 3 --depth 4 --round-trips 20)
    ch07_load_cli_test(${backend} load_cli_detects_mismatch 1
                       "verdict: FAIL - connection 0: echo mismatch at byte 0"
                       SERVER ${delay} --header-timeout 100 CLIENT --connections 1 --round-trips 10)
    ch07_load_cli_test(${backend} load_cli_detects_lost_answer 1
                       "verdict: FAIL - connection 0: message 0 unanswered after 0.5 s"
                       SERVER ${delay} CLIENT --size 10 --connections 1 --round-trips 10 --timeout 0.5)
    ch07_load_cli_test(${backend} load_cli_detects_non_200 1
                       "verdict: FAIL - connection 0: answer 0 has status 400"
                       SERVER ${delay} CLIENT --http /nowhere --connections 1 --round-trips 5)
    ch07_load_cli_test(${backend} load_cli_bad_arguments 2 "--round-trips and --seconds"
                       SERVER ${epoll_echo} CLIENT --round-trips 5 --seconds 1)
    # Chapter 7's server as a program, on the same backend, two threads of
    # each design: everything answered and checked, then a clean SIGTERM.
    if(TARGET ch07_server_${backend})
      foreach(design per-thread shared)
        set(chapter_server $<TARGET_FILE:ch07_server_${backend}> --threads 2 --design ${design}
                           --stats-interval 0)
        ch07_load_cli_test(${backend} load_cli_chapter_server_echo_${design} 0
                           "verdict: OK - 10000 round trips, every echo checked"
                           SERVER ${chapter_server} --echo-port 0
                           CLIENT --connections 100 --depth 2 --round-trips 100)
        ch07_load_cli_test(${backend} load_cli_chapter_server_http_${design} 0
                           "statuses +200: 2000 .*\nverdict: OK - 2000 requests, every answer 200"
                           SERVER ${chapter_server} --http-port 0
                           CLIENT --http / --connections 50 --depth 4 --round-trips 40)
      endforeach()
    endif()
  endforeach()
endif()
