# Install rules: the portal-auth binary, the static library with its public headers (and the
# generated version.hpp), a CMake package for find_package(portal_auth CONFIG) and a relocatable
# pkg-config file. The private headers under lib/src are never installed: the library's header
# file set lists lib/include/portal_auth/*.hpp only. test/cli/install_test.sh checks the result.
include(CMakePackageConfigHelpers)

set(portal_auth_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/portal_auth)

if(TARGET portal-auth)
    install(TARGETS portal-auth RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
install(TARGETS portal_auth
    EXPORT portal_authTargets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
    FILE_SET HEADERS DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
)
install(EXPORT portal_authTargets
    NAMESPACE portal_auth::
    DESTINATION ${portal_auth_cmake_dir}
)

# Dependencies besides Boost, OpenSSL and Threads. A static library's private dependencies are
# its consumers' too: hiredis (the Redis store, through pkg-config) when the library links it.
# A new dependency of the library needs its lines here; test/cli/install_test.sh fails without.
get_target_property(portal_auth_link_libraries portal_auth LINK_LIBRARIES)
set(PORTAL_AUTH_CONFIG_EXTRA_DEPENDENCIES "")
set(PORTAL_AUTH_PC_REQUIRES_PRIVATE "libssl >= 3, libcrypto >= 3")
set(PORTAL_AUTH_PC_EXTRA_LIBS "")
if("PkgConfig::HIREDIS" IN_LIST portal_auth_link_libraries)
    string(APPEND PORTAL_AUTH_CONFIG_EXTRA_DEPENDENCIES [[
find_dependency(PkgConfig)
if(NOT TARGET PkgConfig::HIREDIS)
    pkg_check_modules(HIREDIS QUIET IMPORTED_TARGET hiredis)
    if(NOT TARGET PkgConfig::HIREDIS)
        set(portal_auth_FOUND FALSE)
        set(portal_auth_NOT_FOUND_MESSAGE "hiredis, which portal_auth links, was not found")
        return()
    endif()
endif()
]])
    string(APPEND PORTAL_AUTH_PC_REQUIRES_PRIVATE ", hiredis")
    string(APPEND PORTAL_AUTH_PC_EXTRA_LIBS " -lhiredis")
endif()

# CMake: portal_authConfig.cmake finds the dependencies, then includes the exported targets.
set(PORTAL_AUTH_BOOST_MIN_VERSION 1.81)
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/portal_authConfig.cmake.in
    ${PROJECT_BINARY_DIR}/portal_authConfig.cmake
    INSTALL_DESTINATION ${portal_auth_cmake_dir}
)
# 0.x: a minor version may break the API, so only the same major.minor is compatible.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/portal_authConfigVersion.cmake
    VERSION ${PROJECT_VERSION}
    COMPATIBILITY SameMinorVersion
)
install(FILES
    ${PROJECT_BINARY_DIR}/portal_authConfig.cmake
    ${PROJECT_BINARY_DIR}/portal_authConfigVersion.cmake
    DESTINATION ${portal_auth_cmake_dir}
)

# pkg-config: prefix is the .pc file's folder plus a relative path (../.. from lib/pkgconfig,
# ../../.. from a multiarch lib/x86_64-linux-gnu/pkgconfig), so the installed tree can move.
# Paths given absolute stay absolute. Cflags carry the library's own public compile definitions
# (BOOST_BEAST_USE_STD_STRING_VIEW), so the file follows the target; file(GENERATE) evaluates
# any generator expression among them.
file(RELATIVE_PATH PORTAL_AUTH_PC_PREFIX_FROM_PCDIR
    ${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig ${CMAKE_INSTALL_PREFIX})
string(REGEX REPLACE "/$" "" PORTAL_AUTH_PC_PREFIX_FROM_PCDIR
    "${PORTAL_AUTH_PC_PREFIX_FROM_PCDIR}")
foreach(kind INCLUDEDIR LIBDIR)
    if(IS_ABSOLUTE "${CMAKE_INSTALL_${kind}}")
        set(PORTAL_AUTH_PC_${kind} "${CMAKE_INSTALL_${kind}}")
    else()
        set(PORTAL_AUTH_PC_${kind} "\${prefix}/${CMAKE_INSTALL_${kind}}")
    endif()
endforeach()
get_target_property(portal_auth_definitions portal_auth INTERFACE_COMPILE_DEFINITIONS)
set(PORTAL_AUTH_PC_DEFINITIONS "")
if(portal_auth_definitions)
    list(TRANSFORM portal_auth_definitions PREPEND " -D")
    list(JOIN portal_auth_definitions "" PORTAL_AUTH_PC_DEFINITIONS)
endif()
configure_file(${CMAKE_CURRENT_LIST_DIR}/portal_auth.pc.in
    ${PROJECT_BINARY_DIR}/portal_auth.pc.genex @ONLY)
file(GENERATE OUTPUT ${PROJECT_BINARY_DIR}/portal_auth.pc
    INPUT ${PROJECT_BINARY_DIR}/portal_auth.pc.genex)
install(FILES ${PROJECT_BINARY_DIR}/portal_auth.pc
    DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig
)

# The header file set as configured, which test/cli/install_test.sh compares with what was
# installed.
file(GENERATE OUTPUT ${PROJECT_BINARY_DIR}/portal_auth_header_set.txt
    CONTENT "$<JOIN:$<TARGET_PROPERTY:portal_auth,HEADER_SET>,\n>\n")
