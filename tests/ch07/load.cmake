# evq_load's tests (chapters/07-raw-loop/load), included by CMakeLists.txt.
#
# In-process, every backend (Wine too): the generator against peers whose
# faults are known - an echo peer that corrupts a byte, falls silent or hangs
# up, the delay server (HTTP; and not an echo server) - asserting counts and
# exit statuses, never speed.
foreach(backend IN LISTS ch07_backends)
  evq_add_test_program(ch07_${backend}_test_load PART ch07 VARIANT ${backend}
                       SOURCES test_load.c LIBS ch07_load_core_${backend} evq_delayserver
                       TIMEOUT 120)
endforeach()
