# install() rules and an exported package: find_package(hyperad), then hyperad::hyperad
# (everything) or one layer: hyperad::autodiff, hyperad::bilevel, hyperad::problems, and
# hyperad::mpi when built with HYPERAD_MPI.
include(CMakePackageConfigHelpers)
set(_hyperad_installed hyperad hyperad_autodiff hyperad_bilevel hyperad_problems)
if(TARGET hyperad_mpi)  # the optional MPI layer: hyperad::mpi
  list(APPEND _hyperad_installed hyperad_mpi)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/mpi/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
endif()
install(TARGETS ${_hyperad_installed} EXPORT hyperadTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/autodiff/include/ ${PROJECT_SOURCE_DIR}/bilevel/include/
  ${PROJECT_SOURCE_DIR}/problems/include/
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
# The bundled datasets go with the package; hyperadConfig.cmake tells the consumer's
# program where they are, relative to wherever the prefix ends up (see data_dir()).
set(HYPERAD_INSTALL_DATA_DIR ${CMAKE_INSTALL_DATADIR}/hyperad)
file(GLOB _hyperad_data_files ${PROJECT_SOURCE_DIR}/problems/data/*.csv)
install(FILES ${_hyperad_data_files} ${PROJECT_SOURCE_DIR}/problems/data/README.md
  DESTINATION ${HYPERAD_INSTALL_DATA_DIR})
install(EXPORT hyperadTargets NAMESPACE hyperad:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/hyperad)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/hyperadConfig.cmake.in
  ${PROJECT_BINARY_DIR}/hyperadConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/hyperad
  PATH_VARS HYPERAD_INSTALL_DATA_DIR)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/hyperadConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/hyperadConfig.cmake ${PROJECT_BINARY_DIR}/hyperadConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/hyperad)
