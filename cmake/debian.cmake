# SPDX-License-Identifier: MIT
# Debian packages from cpack, split the way Debian splits a library:
#
#   libmempool0     the shared library and its SONAME link (component Runtime)
#   libmempool-dev  headers, the .so link, libmempool.a, mempool.pc, the CMake
#                   package and the manual pages (component Development);
#                   depends on libmempool0 of the same version
#
# Each package has /usr/share/doc/<package>/ with a machine-readable
# copyright file and the Debian and upstream changelogs. Those files and the
# gzipped manual pages are installed only when a component is named
# (EXCLUDE_FROM_ALL), as cpack does, so a plain cmake --install keeps the
# uncompressed pages and share/doc/mempool/LICENSE.

set(MEMPOOL_DEB_MAINTAINER "mempool maintainers <mempool@example.org>" CACHE STRING
  "Maintainer field and changelog signature of the Debian packages")
set(MEMPOOL_DEB_REVISION 1 CACHE STRING "Debian revision of the packages (version ${PROJECT_VERSION}-REVISION)")
set(mempool_deb_version ${PROJECT_VERSION}-${MEMPOOL_DEB_REVISION})
set(mempool_deb ${CMAKE_CURRENT_BINARY_DIR}/debian)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME mempool)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL Runtime Development)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE ${MEMPOOL_DEB_REVISION})
set(CPACK_DEBIAN_PACKAGE_SOURCE mempool)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${MEMPOOL_DEB_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(mempool_deb_about
  "mempool is a C11 library for a pool that owns a fixed number of same-size\n"
  "memory blocks for its whole life. Per-thread caches serve most gets and puts\n"
  "without atomic read-modify-write operations, and behind them a lock-free\n"
  "stack holds the free blocks. A get from an empty pool sleeps, in FIFO order,\n"
  "with or without a timeout. Repeated and foreign puts are refused.\n\n")
string(CONCAT CPACK_DEBIAN_RUNTIME_DESCRIPTION
  "fixed-capacity pool of same-size memory blocks (shared library)\n"
  ${mempool_deb_about}
  "This package contains the shared library.")
string(CONCAT CPACK_DEBIAN_DEVELOPMENT_DESCRIPTION
  "fixed-capacity pool of same-size memory blocks (development files)\n"
  ${mempool_deb_about}
  "This package contains the C and C++ headers, the static library, the\n"
  "pkg-config file, the CMake package and the manual pages.")

set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME libmempool0)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_CONTROL_EXTRA
  ${mempool_deb}/shlibs ${mempool_deb}/symbols ${mempool_deb}/triggers)
find_program(MEMPOOL_DPKG_SHLIBDEPS dpkg-shlibdeps)
if(MEMPOOL_DPKG_SHLIBDEPS)
  set(CPACK_DEBIAN_RUNTIME_PACKAGE_SHLIBDEPS ON)
endif()
set(CPACK_DEBIAN_DEVELOPMENT_PACKAGE_NAME libmempool-dev)
set(CPACK_DEBIAN_DEVELOPMENT_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEVELOPMENT_PACKAGE_DEPENDS "libmempool0 (= ${mempool_deb_version})")

# Control files of libmempool0: dpkg runs ldconfig through its trigger, and
# programs built against the library depend on at least this version. The
# symbols file lists every symbol of cmake/mempool.map under its version
# node, each with the version being packaged.
file(WRITE ${mempool_deb}/triggers "activate-noawait ldconfig\n")
file(WRITE ${mempool_deb}/shlibs
  "libmempool ${PROJECT_VERSION_MAJOR} libmempool0 (>= ${PROJECT_VERSION})\n")
file(READ ${CMAKE_CURRENT_SOURCE_DIR}/cmake/mempool.map mempool_map_text)
string(REGEX REPLACE "/\\*([^*]|\\*+[^*/])*\\*+/" "" mempool_map_text "${mempool_map_text}")
string(REPLACE ";" " " mempool_map_text "${mempool_map_text}")
string(REGEX MATCHALL "[A-Za-z0-9_.]+[ \t\r\n]*{[^}]*}" mempool_map_nodes "${mempool_map_text}")
set(mempool_symbols "")
foreach(node IN LISTS mempool_map_nodes)
  string(REGEX MATCH "^[A-Za-z0-9_.]+" node_name "${node}")
  string(REGEX REPLACE "local:.*$" "" node_global "${node}")
  string(REGEX REPLACE "^[^{]*{[ \t\r\n]*global:" "" node_global "${node_global}")
  string(REGEX MATCHALL "[A-Za-z_][A-Za-z0-9_]*" node_functions "${node_global}")
  list(APPEND mempool_symbols "${node_name}@${node_name}")
  foreach(function IN LISTS node_functions)
    list(APPEND mempool_symbols "${function}@${node_name}")
  endforeach()
endforeach()
list(SORT mempool_symbols)
set(mempool_symbols_text "libmempool.so.${PROJECT_VERSION_MAJOR} libmempool0 #MINVER#\n")
string(APPEND mempool_symbols_text "* Build-Depends-Package: libmempool-dev\n")
foreach(symbol IN LISTS mempool_symbols)
  string(APPEND mempool_symbols_text " ${symbol} ${PROJECT_VERSION}\n")
endforeach()
file(WRITE ${mempool_deb}/symbols "${mempool_symbols_text}")

# The copyright file in the machine-readable format, from LICENSE.
file(STRINGS ${CMAKE_CURRENT_SOURCE_DIR}/LICENSE mempool_license_lines)
set(mempool_license_text "")
set(mempool_copyright "")
foreach(line IN LISTS mempool_license_lines)
  if(line MATCHES "^Copyright \\(c\\) (.*)$")
    set(mempool_copyright "${CMAKE_MATCH_1}")
  elseif(mempool_copyright AND line STREQUAL "")
    string(APPEND mempool_license_text " .\n")
  elseif(mempool_copyright)
    string(APPEND mempool_license_text " ${line}\n")
  endif()
endforeach()
string(REGEX REPLACE "^ \\.\n" "" mempool_license_text "${mempool_license_text}")
file(WRITE ${mempool_deb}/copyright
  "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
  "Upstream-Name: mempool\n"
  "\n"
  "Files: *\n"
  "Copyright: ${mempool_copyright}\n"
  "License: Expat\n"
  "Comment: The MIT licence of LICENSE (SPDX MIT), which this format calls Expat.\n"
  "\n"
  "License: Expat\n"
  "${mempool_license_text}")

# These packages are not uploads to Debian: no ITP bug to close.
foreach(package IN ITEMS libmempool0 libmempool-dev)
  file(WRITE ${mempool_deb}/lintian/${package}
    "# Built outside the Debian archive: there is no ITP bug to close.\n"
    "${package}: initial-upload-closes-no-bugs\n")
endforeach()

string(TIMESTAMP mempool_deb_date "%a, %d %b %Y %H:%M:%S +0000" UTC)
file(WRITE ${mempool_deb}/source/changelog.Debian
  "mempool (${mempool_deb_version}) unstable; urgency=medium\n"
  "\n"
  "  * Packages of the upstream release ${PROJECT_VERSION}, built with cpack.\n"
  "\n"
  " -- ${MEMPOOL_DEB_MAINTAINER}  ${mempool_deb_date}\n")

# Debian ships changelogs and manual pages compressed with gzip -9n.
# mempool_deb_gzip(SOURCE OUTPUT): OUTPUT.gz, made with gzip -9n from SOURCE.
function(mempool_deb_gzip source output)
  add_custom_command(OUTPUT ${output}.gz
    COMMAND ${CMAKE_COMMAND} -E copy ${source} ${output}
    COMMAND ${MEMPOOL_GZIP} -9nf ${output}
    DEPENDS ${source}
    VERBATIM)
  set(mempool_deb_gzipped ${mempool_deb_gzipped} ${output}.gz PARENT_SCOPE)
endfunction()
find_program(MEMPOOL_GZIP gzip)
set(mempool_deb_gzipped "")
if(MEMPOOL_GZIP)
  mempool_deb_gzip(${mempool_deb}/source/changelog.Debian ${mempool_deb}/changelog.Debian)
  mempool_deb_gzip(${CMAKE_CURRENT_SOURCE_DIR}/CHANGELOG.md ${mempool_deb}/changelog)
  set(mempool_deb_changelogs ${mempool_deb_gzipped})
  foreach(page IN LISTS mempool_man_pages)
    get_filename_component(name ${page} NAME)
    mempool_deb_gzip(${page} ${mempool_deb}/man3/${name})
  endforeach()
  list(REMOVE_ITEM mempool_deb_gzipped ${mempool_deb_changelogs})
  install(FILES ${mempool_deb_gzipped} DESTINATION ${CMAKE_INSTALL_MANDIR}/man3
    COMPONENT Development EXCLUDE_FROM_ALL)
  add_custom_target(mempool_debian_files ALL DEPENDS ${mempool_deb_changelogs} ${mempool_deb_gzipped})
else()
  message(STATUS "gzip not found: the Debian packages will lack changelogs and manual pages")
  set(mempool_deb_changelogs "")
endif()

foreach(package IN ITEMS Runtime:libmempool0 Development:libmempool-dev)
  string(REGEX REPLACE ":.*" "" component ${package})
  string(REGEX REPLACE ".*:" "" package ${package})
  install(FILES ${mempool_deb}/copyright ${mempool_deb_changelogs}
    DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/${package} COMPONENT ${component} EXCLUDE_FROM_ALL)
  install(FILES ${mempool_deb}/lintian/${package} DESTINATION ${CMAKE_INSTALL_DATADIR}/lintian/overrides
    COMPONENT ${component} EXCLUDE_FROM_ALL)
endforeach()

include(CPack)
