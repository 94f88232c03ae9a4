# mpi::run_or_abort: a rank failing alone aborts the whole job (exit code 3, its message on
# stderr) instead of leaving the others waiting; on one rank it returns 3 after printing.
# cmake -DPROBE=<abort_probe> -DMPIEXEC=<mpirun> -DNP_FLAG=-n "-DPRE_FLAGS=" "-DMPI_ENV=A=1;B=2"
#       -P check_abort.cmake
foreach(np 1 2)
  execute_process(COMMAND ${CMAKE_COMMAND} -E env ${MPI_ENV} ${MPIEXEC} ${NP_FLAG} ${np} ${PRE_FLAGS} ${PROBE}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 120)
  if(rc STREQUAL "0" OR NOT rc MATCHES "^[0-9]+$")
    message(FATAL_ERROR "abort_probe on ${np} rank(s): exit '${rc}', expected a failure\n${out}\n${err}")
  endif()
  math(EXPR last "${np} - 1")
  if(NOT err MATCHES "rank ${last} of ${np}: probe_fragile: backward failed on this rank")
    message(FATAL_ERROR "abort_probe on ${np} rank(s): the failed rank's message is missing; stderr:\n${err}")
  endif()
  if(err MATCHES "run_or_abort returned")
    message(FATAL_ERROR "abort_probe on ${np} ranks: run_or_abort returned instead of aborting the job\n${err}")
  endif()
  if(np EQUAL 1 AND NOT rc EQUAL 3)
    message(FATAL_ERROR "abort_probe on one rank: exit ${rc}, expected 3 (returned, not aborted)\n${err}")
  endif()
endforeach()
