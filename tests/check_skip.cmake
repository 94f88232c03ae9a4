# Runs skip_probe's cases and checks their exit codes: a skipped test exits 77 (which
# ctest's SKIP_RETURN_CODE reports as skipped, not passed), a failure after a skip still
# fails (1), and a test that does not skip exits 0.
# cmake -DPROBE=<path to skip_probe> -P check_skip.cmake
foreach(case_and_rc "skips=77" "skips then fails=1" "passes=0")
  string(REGEX MATCH "^(.*)=([0-9]+)$" _ "${case_and_rc}")
  set(case "${CMAKE_MATCH_1}")
  set(want "${CMAKE_MATCH_2}")
  execute_process(COMMAND ${PROBE} "--test-case=${case}" RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
  if(NOT rc STREQUAL want)
    message(FATAL_ERROR "skip_probe case '${case}': exit code ${rc}, expected ${want}\n${err}")
  endif()
  if(case STREQUAL "skips" AND NOT err MATCHES "skipped: probe: data absent")
    message(FATAL_ERROR "skip_probe case 'skips' did not print its reason; stderr:\n${err}")
  endif()
endforeach()
