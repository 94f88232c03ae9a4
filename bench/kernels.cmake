# Extras of the kernel benchmarks. OpenBLAS is optional and benchmark-only (never a
# dependency of the library): when found, bench_gemm compares against it in the same run.
find_path(HYPERAD_OPENBLAS_INCLUDE_DIR cblas.h PATH_SUFFIXES openblas-pthread openblas)
find_library(HYPERAD_OPENBLAS_LIBRARY NAMES openblas)
if(TARGET bench_gemm)
  if(HYPERAD_OPENBLAS_INCLUDE_DIR AND HYPERAD_OPENBLAS_LIBRARY)
    target_include_directories(bench_gemm SYSTEM PRIVATE ${HYPERAD_OPENBLAS_INCLUDE_DIR})
    target_link_libraries(bench_gemm PRIVATE ${HYPERAD_OPENBLAS_LIBRARY})
    target_compile_definitions(bench_gemm PRIVATE HYPERAD_HAVE_OPENBLAS=1)
    message(STATUS "bench_gemm: comparing against OpenBLAS (${HYPERAD_OPENBLAS_LIBRARY})")
  else()
    message(STATUS "bench_gemm: OpenBLAS not found (apt-get install libopenblas-dev); comparing against the naive loop only")
  endif()
endif()
