/* SPDX-License-Identifier: MIT */
/*
 * mempool.hpp: the C++17 face of mempool, header-only.
 *
 * OVERVIEW
 *   mempoolxx::pool owns one C pool (move-only; destroyed with the object).
 *   Its gets return a mempoolxx::block, a std::unique_ptr whose deleter puts
 *   the block back: a block cannot leak, and since the handle cannot be
 *   copied, it cannot be put twice by mistake. mempoolxx::object_pool<T> is
 *   an arena pool of blocks sized and aligned for T whose gets construct a T
 *   in the block and whose handles destroy it before the put.
 *
 *     mempoolxx::object_pool<Message> messages(1024);
 *     auto m = messages.make(42, "hello");         // waits for a free block
 *     auto n = messages.make_for(5ms, 43, "hi");   // empty after 5 ms
 *     // m and n go back to the pool when they go out of scope
 *
 *   The namespace is mempoolxx: a namespace named mempool would clash with
 *   the C type `mempool` of <mempool.h>.
 *
 * ERRORS
 *   Every failing call of the C library becomes an errno value in the
 *   std::generic_category. Each operation that can fail has two overloads:
 *   - without a std::error_code argument, it throws std::system_error for a
 *     failure (EINVAL, ECANCELED, ENOMEM, ...). A get that may not wait or
 *     wait longer (try_get, get_for) is not a failure when it finds no
 *     block: it returns an empty handle, like std::timed_mutex::try_lock_for
 *     returns false;
 *   - with a trailing std::error_code &, it never throws: the code is
 *     cleared on success and set on any failure, EAGAIN and ETIMEDOUT
 *     included, and the handle is then empty.
 *   object_pool's make functions also pass on whatever T's constructor
 *   throws (the block goes back to the pool first).
 *
 * TIMEOUTS
 *   std::chrono durations, rounded up to whole nanoseconds (never shorter).
 *   A zero or negative duration does not wait (the <chrono> convention, not
 *   the C one); one too long for int64_t nanoseconds waits forever. get()
 *   without a duration waits as long as needed.
 *
 * LIFETIME
 *   A pool must outlive its handles: reset or destroy every handle before
 *   the pool object is destroyed (a handle that is still out then refers to
 *   a destroyed pool). Moving a pool object keeps its handles valid, since
 *   they refer to the C pool, not to the C++ object. Threading, waiting and
 *   close/drain behave as in the C library (see mempool(3)).
 */
#ifndef MEMPOOL_HPP
#define MEMPOOL_HPP

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <new>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "mempool.h"

namespace mempoolxx {

/* Puts a block back into the pool it came from. */
struct block_deleter {
    ::mempool *pool = nullptr;
    void operator()(void *block) const noexcept { ::mempool_put(pool, block); }
};

/* One block of a pool; put back when the handle is reset or destroyed. */
using block = std::unique_ptr<void, block_deleter>;

namespace detail {

inline std::error_code errno_code(int value) noexcept
{
    return std::error_code(value, std::generic_category());
}

/* Nanoseconds for the C API: rounded up, <= 0 -> 0 (no wait), too large ->
 * -1 (forever). */
template <class Rep, class Period>
std::int64_t timeout_ns(const std::chrono::duration<Rep, Period> &timeout) noexcept
{
    using wide = std::chrono::duration<long double, std::nano>;
    const long double ns = std::chrono::duration_cast<wide>(timeout).count();
    if (!(ns > 0))
        return 0;
    if (ns >= static_cast<long double>(INT64_MAX))
        return -1;
    return std::chrono::ceil<std::chrono::nanoseconds>(timeout).count();
}

/* A non-waiting or timed get that found no block is not a failure for the
 * throwing overloads. */
inline bool is_no_block(const std::error_code &ec) noexcept
{
    return ec == std::errc::resource_unavailable_try_again || ec == std::errc::timed_out;
}

} // namespace detail

/* Owns one C pool. Move-only. */
class pool {
public:
    /* Creates a pool from a C configuration; throws std::system_error. */
    explicit pool(const mempool_config &config) : pool_(::mempool_create(&config))
    {
        if (!pool_)
            throw std::system_error(detail::errno_code(errno), "mempool_create");
    }

    /* An arena pool of `capacity` blocks of `block_size` bytes. */
    pool(std::size_t capacity, std::size_t block_size, std::size_t alignment = 0,
         unsigned flags = 0)
        : pool(arena_config(capacity, block_size, alignment, flags))
    {
    }

    /* Creates a pool without throwing: on failure the result is empty
     * (native() == nullptr) and ec says why. */
    static pool create(const mempool_config &config, std::error_code &ec) noexcept
    {
        pool result(::mempool_create(&config));
        ec = result.pool_ ? std::error_code() : detail::errno_code(errno);
        return result;
    }

    pool(pool &&other) noexcept : pool_(std::exchange(other.pool_, nullptr)) {}
    pool &operator=(pool &&other) noexcept
    {
        if (this != &other)
            ::mempool_destroy(std::exchange(pool_, std::exchange(other.pool_, nullptr)));
        return *this;
    }
    pool(const pool &) = delete;
    pool &operator=(const pool &) = delete;
    ~pool() { ::mempool_destroy(pool_); }

    /* The C pool, for calls this class does not wrap. */
    ::mempool *native() const noexcept { return pool_; }
    explicit operator bool() const noexcept { return pool_ != nullptr; }

    /* Waits as long as needed; throws for ECANCELED, ENOMEM or EINVAL. */
    block get() { return or_throw(::mempool_get(pool_), "mempool_get"); }
    block get(std::error_code &ec) noexcept { return checked(::mempool_get(pool_), ec); }

    /* Does not wait: an empty handle when no block is free. */
    block try_get() { return or_empty(::mempool_try_get(pool_), "mempool_try_get"); }
    block try_get(std::error_code &ec) noexcept { return checked(::mempool_try_get(pool_), ec); }

    /* Waits at most `timeout`: an empty handle when it expires. */
    template <class Rep, class Period>
    block get_for(const std::chrono::duration<Rep, Period> &timeout)
    {
        return or_empty(::mempool_get_timeout(pool_, detail::timeout_ns(timeout)),
                        "mempool_get_timeout");
    }
    template <class Rep, class Period>
    block get_for(const std::chrono::duration<Rep, Period> &timeout, std::error_code &ec) noexcept
    {
        return checked(::mempool_get_timeout(pool_, detail::timeout_ns(timeout)), ec);
    }

    /* n blocks or none (mempool_get_bulk), waiting at most `timeout`. */
    template <class Rep, class Period>
    std::vector<block> get_bulk(std::size_t n, const std::chrono::duration<Rep, Period> &timeout,
                                std::error_code &ec)
    {
        std::vector<void *> raw(n);
        std::vector<block> blocks;
        blocks.reserve(n);
        int err = ::mempool_get_bulk(pool_, raw.data(), n, detail::timeout_ns(timeout));
        ec = err ? detail::errno_code(err) : std::error_code();
        if (!err)
            for (void *p : raw)
                blocks.emplace_back(p, block_deleter{pool_});
        return blocks;
    }

    /* Takes ownership of a block obtained from native(). */
    block adopt(void *raw) noexcept { return block(raw, block_deleter{pool_}); }

    void close() noexcept { ::mempool_close(pool_); }
    void flush() noexcept { ::mempool_flush(pool_); }

    /* Waits until every block is back: true, or false when `timeout` expires. */
    template <class Rep, class Period>
    bool drain_for(const std::chrono::duration<Rep, Period> &timeout) noexcept
    {
        return ::mempool_drain(pool_, detail::timeout_ns(timeout)) == 0;
    }
    /* Waits as long as needed for every block. */
    void drain() noexcept { ::mempool_drain(pool_, -1); }

    std::size_t capacity() const noexcept { return ::mempool_capacity(pool_); }
    std::size_t available() const noexcept { return ::mempool_available(pool_); }
    std::size_t block_size() const noexcept { return ::mempool_block_size(pool_); }
    bool owns(const void *p) const noexcept { return ::mempool_owns(pool_, p) == 1; }
    std::size_t index(const void *p) const noexcept { return ::mempool_index(pool_, p); }

    /* Statistics (mempool_stats_read); throws only for an empty pool. */
    mempool_stats stats() const
    {
        mempool_stats out{};
        if (int err = ::mempool_stats_read(pool_, &out))
            throw std::system_error(detail::errno_code(err), "mempool_stats_read");
        return out;
    }
    void reset_stats() noexcept { ::mempool_stats_reset(pool_); }
    std::error_code print_stats(std::FILE *out) const noexcept
    {
        int err = ::mempool_stats_print(pool_, out);
        return err ? detail::errno_code(err) : std::error_code();
    }

private:
    explicit pool(::mempool *raw) noexcept : pool_(raw) {}

    static mempool_config arena_config(std::size_t capacity, std::size_t block_size,
                                       std::size_t alignment, unsigned flags) noexcept
    {
        mempool_config config{};
        config.capacity = capacity;
        config.block_size = block_size;
        config.alignment = alignment;
        config.flags = flags;
        return config;
    }

    block checked(void *raw, std::error_code &ec) const noexcept
    {
        ec = raw ? std::error_code() : detail::errno_code(errno);
        return block(raw, block_deleter{pool_});
    }
    block or_throw(void *raw, const char *what) const
    {
        std::error_code ec;
        block result = checked(raw, ec);
        if (ec)
            throw std::system_error(ec, what);
        return result;
    }
    block or_empty(void *raw, const char *what) const
    {
        std::error_code ec;
        block result = checked(raw, ec);
        if (ec && !detail::is_no_block(ec))
            throw std::system_error(ec, what);
        return result;
    }

    ::mempool *pool_;
};

/* Destroys the T in a block, then puts the block back. */
template <class T>
struct object_deleter {
    ::mempool *pool = nullptr;
    void operator()(T *object) const noexcept
    {
        object->~T();
        ::mempool_put(pool, object);
    }
};

/* A pool of `capacity` blocks, each holding one T while it is out. */
template <class T>
class object_pool {
public:
    using handle = std::unique_ptr<T, object_deleter<T>>;

    explicit object_pool(std::size_t capacity, unsigned flags = 0)
        : pool_(capacity, sizeof(T), alignof(T), flags)
    {
    }

    /* Waits for a block and constructs T(args...) in it. Throws
     * std::system_error (ECANCELED, ...) or what the constructor throws. */
    template <class... Args>
    handle make(Args &&...args)
    {
        return construct(pool_.get(), std::forward<Args>(args)...);
    }

    /* As make, waiting at most `timeout`: an empty handle when it expires. */
    template <class Rep, class Period, class... Args>
    handle make_for(const std::chrono::duration<Rep, Period> &timeout, Args &&...args)
    {
        return construct(pool_.get_for(timeout), std::forward<Args>(args)...);
    }

    /* As make_for, reporting pool errors (ETIMEDOUT included) through ec;
     * only T's constructor can throw. */
    template <class Rep, class Period, class... Args>
    handle make_for(std::error_code &ec, const std::chrono::duration<Rep, Period> &timeout,
                    Args &&...args)
    {
        return construct(pool_.get_for(timeout, ec), std::forward<Args>(args)...);
    }

    /* The underlying pool: capacity, available, close, drain, stats... */
    mempoolxx::pool &raw_pool() noexcept { return pool_; }
    const mempoolxx::pool &raw_pool() const noexcept { return pool_; }

private:
    template <class... Args>
    handle construct(block memory, Args &&...args)
    {
        if (!memory)
            return handle(nullptr, object_deleter<T>{pool_.native()});
        /* If the constructor throws, `memory` still owns the block and puts it back. */
        T *object = ::new (memory.get()) T(std::forward<Args>(args)...);
        memory.release();
        return handle(object, object_deleter<T>{pool_.native()});
    }

    mempoolxx::pool pool_;
};

} // namespace mempoolxx

#endif /* MEMPOOL_HPP */
