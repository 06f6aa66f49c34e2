# Chapter 7's server (chapters/07-raw-loop/server), on every backend:
#   test_server          in-process, one loop: echo (16 MiB over 100
#                        connections, backpressure), HTTP routes and refusals,
#                        keep-alive and pipelining, deadlines on a clock the
#                        test moves, the stats line through the channel, a
#                        clean stop with connections in every state;
#   test_server_threads  four loops, both designs, under load (the tsan
#                        preset runs it: ctest -L ch07);
#   the program          --help, bad options (exit 2 with the reason) and a
#                        real SIGINT/SIGTERM with connections open (on POSIX,
#                        test_server_signal.c; under Wine, where SIGINT is a
#                        console Ctrl-C, ctrl_c_under_wine.sh).
get_property(ch07_server_test_backends GLOBAL PROPERTY EVQ_ch07_BACKENDS)
foreach(backend IN LISTS ch07_server_test_backends)
  foreach(part test_server test_server_threads)
    evq_add_test_program(ch07_${backend}_${part} PART ch07 VARIANT ${backend}
                         SOURCES ${part}.c LIBS ch07_server_core_${backend}
                         LABELS server TIMEOUT 300)
  endforeach()

  evq_backend_runner(${backend} runner skip_output)
  foreach(spec
          "server_help|0|Usage: ch07_server.*--echo-port P.*--http-port P.*--threads N.*--design shared.per-thread.*--grace MS|--help"
          "server_rejects_an_unknown_option|2|--fast is not an option|--fast"
          "server_rejects_a_bad_port|2|--http-port needs a port number from 0 to 65535, got '70000'|--http-port|70000"
          "server_rejects_a_bad_design|2|--design needs shared or per-thread, got 'both'|--design|both"
          "server_rejects_zero_threads|2|--threads needs a number of threads from 1 to 64|--threads|0"
          "server_rejects_a_missing_value|2|--grace needs milliseconds from 0 to 3600000, got ''|--grace")
    string(REPLACE "|" ";" fields "${spec}")
    list(POP_FRONT fields name status regex)
    evq_add_expect_exit_test(ch07.${backend}.${name} PROGRAM ch07_server_${backend}
                             EXIT ${status} OUTPUT "${regex}" ARGS ${fields}
                             LABELS ch07 ${backend} server)
  endforeach()
  if(WIN32)
    # Windows has no SO_REUSEPORT: the per-thread design is refused, clearly.
    evq_add_expect_exit_test(ch07.${backend}.server_refuses_per_thread_on_windows
                             PROGRAM ch07_server_${backend} EXIT 2
                             OUTPUT "per-thread needs SO_REUSEPORT.*use --design shared"
                             ARGS --threads 2 --design per-thread
                             LABELS ch07 ${backend} server)
    # Ctrl-C for real: under Wine, a SIGINT to the program is a console
    # CTRL_C_EVENT, given to the handler the server registered.
    if(CMAKE_CROSSCOMPILING AND CMAKE_HOST_UNIX AND CMAKE_CROSSCOMPILING_EMULATOR)
      find_program(EVQ_BASH bash)
      if(EVQ_BASH)
        set(test ch07.${backend}.ctrl_c_with_connections_open_prints_the_totals_and_exits_0)
        add_test(NAME ${test}
                 COMMAND ${EVQ_BASH} "${CMAKE_CURRENT_LIST_DIR}/ctrl_c_under_wine.sh"
                         "$<TARGET_FILE:ch07_server_${backend}>" ${CMAKE_CROSSCOMPILING_EMULATOR})
        evq_set_test_properties(${test} LABELS ch07 ${backend} server TIMEOUT 120)
      endif()
    endif()
  else()
    evq_add_test_program(ch07_${backend}_test_server_signal PART ch07 VARIANT ${backend}
                         SOURCES test_server_signal.c LABELS server
                         ENVIRONMENT "EVQ_SERVER_PROGRAM=$<TARGET_FILE:ch07_server_${backend}>")
    add_dependencies(ch07_${backend}_test_server_signal ch07_server_${backend})
  endif()
endforeach()
