/* SPDX-License-Identifier: MIT */
// Uses the installed C++ header the way a user would: a typed pool whose
// handles put the blocks back. Prints the library's version.
#include <chrono>
#include <cstdio>
#include <string>

#include <mempool.hpp>

struct Greeting {
    std::string text;
    explicit Greeting(std::string t) : text(std::move(t)) {}
};

int main()
{
    using namespace std::chrono_literals;
    mempoolxx::object_pool<Greeting> greetings(2);
    bool ok;
    {
        auto hello = greetings.make("hello");
        auto world = greetings.make_for(10ms, "world");
        auto none = greetings.make_for(1ms, "none"); // both blocks are out
        ok = hello && world && !none && greetings.available() == 0;
        if (ok)
            std::printf("consumer-cxx: %s, %s from libmempool %s\n", hello->text.c_str(),
                        world->text.c_str(), mempool_version());
    }
    ok = ok && greetings.available() == 2;
    std::puts(ok ? "consumer-cxx: ok" : "consumer-cxx: FAILED");
    return !ok;
}
