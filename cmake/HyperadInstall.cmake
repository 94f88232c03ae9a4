# install() rules and an exported package: find_package(hyperad), then hyperad::hyperad
# (everything) or one layer: hyperad::autodiff, hyperad::bilevel, hyperad::problems.
include(CMakePackageConfigHelpers)
install(TARGETS hyperad hyperad_autodiff hyperad_bilevel hyperad_problems EXPORT hyperadTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/autodiff/include/ ${PROJECT_SOURCE_DIR}/bilevel/include/
  ${PROJECT_SOURCE_DIR}/problems/include/
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT hyperadTargets NAMESPACE hyperad:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/hyperad)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/hyperadConfig.cmake.in
  ${PROJECT_BINARY_DIR}/hyperadConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/hyperad)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/hyperadConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/hyperadConfig.cmake ${PROJECT_BINARY_DIR}/hyperadConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/hyperad)
