# SPDX-License-Identifier: MIT
# Cross-build for 64-bit ARM Linux with Debian's gcc-aarch64-linux-gnu, and
# run the tests under qemu-user (Debian qemu-user) with the target's libraries
# from libc6-dev-arm64-cross:
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake
#   cmake --build build-aarch64 && (cd build-aarch64 && ctest)
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(MEMPOOL_CROSS_SYSROOT /usr/aarch64-linux-gnu CACHE PATH "The target's libraries, for the emulator")
set(CMAKE_FIND_ROOT_PATH ${MEMPOOL_CROSS_SYSROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
# ctest runs every test program through this.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L ${MEMPOOL_CROSS_SYSROOT})
# pkg-config looks only at the target's own .pc files, never the host's.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:${MEMPOOL_CROSS_SYSROOT}/lib/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
