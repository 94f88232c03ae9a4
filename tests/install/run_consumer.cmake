# ctest's install_consumer: installs hyperad from HYPERAD_BUILD_DIR into a prefix under
# WORK_DIR, then configures, builds and runs the project in CONSUMER_SOURCE_DIR against it.
# Run as: cmake -DHYPERAD_BUILD_DIR=... -DCONSUMER_SOURCE_DIR=... -DWORK_DIR=... [-DCONFIG=...]
#               [-DGENERATOR=...] [-DCXX_COMPILER=...] [-DCONSUMER_FLAGS=...] -P run_consumer.cmake
cmake_minimum_required(VERSION 3.25)

foreach(var HYPERAD_BUILD_DIR CONSUMER_SOURCE_DIR WORK_DIR)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "run_consumer.cmake: ${var} is not set")
  endif()
endforeach()
if(NOT CONFIG)
  set(CONFIG Release)
endif()

set(prefix ${WORK_DIR}/prefix)
set(consumer_build ${WORK_DIR}/build)
# Start clean so a stale install or cache cannot hide a broken package.
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

# Runs one step; on failure prints its output and stops with `what` in the message.
function(run_step what)
  message(STATUS "install_consumer: ${what}")
  execute_process(COMMAND ${ARGN}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message("${out}")
    message("${err}")
    message(FATAL_ERROR "install_consumer: FAILED to ${what} (exit status: ${rc})")
  endif()
endfunction()

# Installed into one directory, then moved: the package must not depend on where it was
# installed (nor on the source tree: the consumer checks its datasets come from the prefix).
set(staging ${WORK_DIR}/staging)
run_step("install hyperad into ${staging}"
  ${CMAKE_COMMAND} --install ${HYPERAD_BUILD_DIR} --prefix ${staging} --config ${CONFIG})
file(RENAME ${staging} ${prefix})

set(configure_args -S ${CONSUMER_SOURCE_DIR} -B ${consumer_build}
  -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=${CONFIG})
if(GENERATOR)
  list(APPEND configure_args -G ${GENERATOR})
endif()
if(CXX_COMPILER)
  list(APPEND configure_args -DCMAKE_CXX_COMPILER=${CXX_COMPILER})
endif()
if(CONSUMER_FLAGS)
  list(APPEND configure_args -DCMAKE_CXX_FLAGS=${CONSUMER_FLAGS} -DCMAKE_EXE_LINKER_FLAGS=${CONSUMER_FLAGS})
endif()
run_step("configure the consumer project with find_package(hyperad)" ${CMAKE_COMMAND} ${configure_args})
run_step("build the consumer project" ${CMAKE_COMMAND} --build ${consumer_build} --config ${CONFIG})

find_program(app NAMES app PATHS ${consumer_build} ${consumer_build}/${CONFIG} NO_DEFAULT_PATH)
if(NOT app)
  message(FATAL_ERROR "install_consumer: FAILED to find the built consumer executable under ${consumer_build}")
endif()
run_step("run the consumer (gradient of sum(x*x) must be 2x, data from the prefix)" ${app})
# The installed tool, too, reads the datasets installed with it.
if(EXISTS ${prefix}/bin/hyperad)
  message(STATUS "install_consumer: the installed hyperad tool reads the installed datasets")
  execute_process(COMMAND ${prefix}/bin/hyperad list datasets RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  string(FIND "${out}" "bundled CSVs (${prefix}/share/hyperad)" at)
  if(NOT rc EQUAL 0 OR at EQUAL -1)
    message("${out}${err}")
    message(FATAL_ERROR "install_consumer: FAILED: the installed hyperad tool does not read ${prefix}/share/hyperad")
  endif()
  execute_process(COMMAND ${prefix}/bin/hyperad run logreg --small -n 2 -q RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message("${out}${err}")
    message(FATAL_ERROR "install_consumer: FAILED: the installed hyperad tool cannot run logreg on its bundled data")
  endif()
endif()
message(STATUS "install_consumer: passed")
