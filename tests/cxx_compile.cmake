# SPDX-License-Identifier: MIT
# Compile-time checks of include/mempool.hpp, run as one ctest test:
#   cmake -DCXX=compiler -DINCLUDE=dir -DSOURCE=tests/cxx_discard.cpp -P cxx_compile.cmake
# 1. Under C++14 the header stops the build with "mempool.hpp needs C++17".
# 2. Under C++17 every line of SOURCE marked "// discard" draws a nodiscard
#    warning ("ignoring return value", the words of both gcc and clang).
execute_process(COMMAND ${CXX} -std=c++14 -fsyntax-only -I${INCLUDE} ${SOURCE}
  RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(status EQUAL 0 OR NOT out MATCHES "mempool.hpp needs C\\+\\+17")
  message(FATAL_ERROR "C++14 build of mempool.hpp did not stop with its #error:\n${out}")
endif()

execute_process(COMMAND ${CXX} -std=c++17 -fsyntax-only -Wunused-result -I${INCLUDE} ${SOURCE}
  RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE out)
file(STRINGS ${SOURCE} marked REGEX "// discard$")
list(LENGTH marked expected)
string(REGEX MATCHALL "ignoring return value" warnings "${out}")
list(LENGTH warnings got)
if(NOT status EQUAL 0 OR NOT got EQUAL expected)
  message(FATAL_ERROR "expected ${expected} nodiscard warnings, got ${got}:\n${out}")
endif()
message(STATUS "C++14 refused; ${got} of ${expected} dropped handles warned about")
