# Extras of the kernel benchmarks. OpenBLAS is optional and benchmark-only (never a
# dependency of the library): when found, bench_gemm and bench_gemv compare against it in
# the same run.
find_path(HYPERAD_OPENBLAS_INCLUDE_DIR cblas.h PATH_SUFFIXES openblas-pthread openblas)
find_library(HYPERAD_OPENBLAS_LIBRARY NAMES openblas)
foreach(target IN ITEMS bench_gemm bench_gemv)
  if(NOT TARGET ${target})
    continue()
  endif()
  if(HYPERAD_OPENBLAS_INCLUDE_DIR AND HYPERAD_OPENBLAS_LIBRARY)
    target_include_directories(${target} SYSTEM PRIVATE ${HYPERAD_OPENBLAS_INCLUDE_DIR})
    target_link_libraries(${target} PRIVATE ${HYPERAD_OPENBLAS_LIBRARY})
    target_compile_definitions(${target} PRIVATE HYPERAD_HAVE_OPENBLAS=1)
    message(STATUS "${target}: comparing against OpenBLAS (${HYPERAD_OPENBLAS_LIBRARY})")
  else()
    message(STATUS "${target}: OpenBLAS not found (apt-get install libopenblas-dev); no OpenBLAS column")
  endif()
endforeach()
