/* SPDX-License-Identifier: MIT */
// Compiled, never run, by tests/cxx_compile.cmake: every call below drops a
// handle (or a result saying whether handles were written), and each must
// draw the compiler's nodiscard warning. Under C++14 the header's #error
// must stop the build first.
#include <chrono>
#include <iterator>
#include <system_error>
#include <vector>

#include "mempool.hpp"

using namespace std::chrono_literals;

void discard(mempoolxx::pool &pool, mempoolxx::object_pool<int> &ints, const mempool_config &config)
{
    std::error_code ec;
    std::vector<mempoolxx::block> out;
    auto soon = std::chrono::steady_clock::now() + 1ms;
    pool.get();                                          // discard
    pool.get(ec);                                        // discard
    pool.try_get();                                      // discard
    pool.try_get(ec);                                    // discard
    pool.get_for(1ms);                                   // discard
    pool.get_for(1ms, ec);                               // discard
    pool.get_until(soon);                                // discard
    pool.get_until(soon, ec);                            // discard
    pool.get_bulk(2, std::back_inserter(out), ec);       // discard
    pool.get_bulk(2, std::back_inserter(out), 1ms);      // discard
    pool.get_bulk(2, std::back_inserter(out), 1ms, ec);  // discard
    pool.adopt(nullptr);                                 // discard
    mempoolxx::pool::create(config, ec);                 // discard
    ints.make(1);                                        // discard
    ints.make(ec, 1);                                    // discard
    ints.try_make(1);                                    // discard
    ints.try_make(ec, 1);                                // discard
    ints.make_for(1ms, 1);                               // discard
    ints.make_for(1ms, ec, 1);                           // discard
    ints.make_until(soon, 1);                            // discard
    ints.make_until(soon, ec, 1);                        // discard
    mempoolxx::object_pool<int>::create(config, ec);     // discard
}
