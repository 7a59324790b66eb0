/* SPDX-License-Identifier: MIT */
/*
 * mempool.hpp: the C++17 face of mempool, header-only.
 *
 * OVERVIEW
 *   mempoolxx::pool owns one C pool (move-only; destroyed with the object).
 *   Its gets return a mempoolxx::block, a std::unique_ptr whose deleter puts
 *   the block back: a block cannot leak, and since the handle cannot be
 *   copied, it cannot be put twice by mistake. mempoolxx::object_pool<T> is
 *   an arena pool of blocks sized and aligned for T whose makes construct a
 *   T in the block and whose handles destroy it before the put.
 *
 *     mempoolxx::object_pool<Message> messages(1024);
 *     auto m = messages.make(42, "hello");         // waits for a free block
 *     auto n = messages.make_for(5ms, 43, "hi");   // empty after 5 ms
 *     // m and n go back to the pool when they go out of scope
 *
 *   Every function that returns a handle is [[nodiscard]]: a handle that is
 *   dropped at once puts its block straight back.
 *
 *   The namespace is mempoolxx: a namespace named mempool would clash with
 *   the C type `mempool` of <mempool.h>. native() is the one way down to the
 *   C API, on both classes: it returns the `mempool *` for calls that are
 *   not wrapped here.
 *
 * ARGUMENTS
 *   One order everywhere: what to take (a count and where the handles go,
 *   for bulk gets), then the timeout or deadline, then std::error_code &,
 *   then the constructor arguments of T (object_pool):
 *     get_for(timeout, ec)          make_for(timeout, ec, args...)
 *     get_until(deadline, ec)       make_until(deadline, ec, args...)
 *     get_bulk(n, out, timeout, ec) make(ec, args...), try_make(ec, args...)
 *
 * ERRORS
 *   Every failing call of the C library becomes an errno value in the
 *   std::generic_category. Each operation that can fail has two overloads:
 *   - without a std::error_code argument, it throws std::system_error for a
 *     failure (EINVAL, ECANCELED, ENOMEM, ...). A get that may not wait or
 *     wait longer (try_, _for, _until) is not a failure when it finds no
 *     block: it returns an empty handle (false for a bulk get), like
 *     std::timed_mutex::try_lock_for returns false;
 *   - with a std::error_code &, it does not throw for the pool's errors: the
 *     code is cleared on success and set on any failure, EAGAIN and
 *     ETIMEDOUT included, and the handle is then empty.
 *   object_pool's makes also pass on whatever T's constructor throws (the
 *   block goes back to the pool first), and the bulk calls what the output
 *   iterator throws.
 *
 * TIMEOUTS AND DEADLINES
 *   Timeouts are std::chrono durations, rounded up to whole nanoseconds
 *   (never shorter). A zero or negative duration does not wait (the <chrono>
 *   convention, not the C one); one too long for int64_t nanoseconds waits
 *   forever. Deadlines are std::chrono::steady_clock time points: one
 *   already past does not wait, one too far to express waits forever. On
 *   Linux, where libstdc++ and libc++ read steady_clock from
 *   CLOCK_MONOTONIC, a deadline goes to mempool_get_until as it is; on other
 *   systems the time left until it is waited for. get() and make() without
 *   either wait as long as needed.
 *
 * LIFETIME
 *   A pool must outlive its handles: reset or destroy every handle before
 *   the pool object is destroyed (a handle that is still out then refers to
 *   a destroyed pool). Moving a pool object keeps its handles valid, since
 *   they refer to the C pool, not to the C++ object. Threading, waiting and
 *   close/drain behave as in the C library (see mempool(3), mempool.hpp(3)).
 */
#ifndef MEMPOOL_HPP
#define MEMPOOL_HPP

#if defined(_MSVC_LANG) && _MSVC_LANG >= 201703L
#elif __cplusplus < 201703L
#error "mempool.hpp needs C++17"
#endif

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <memory>
#include <new>
#include <system_error>
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

/* A time since the clock's epoch as the timespec of mempool_get_until,
 * rounded up: false when it is too far to express (wait forever). A time at
 * or before the epoch is {0, 0}, which has passed. */
template <class Rep, class Period>
bool deadline_timespec(const std::chrono::duration<Rep, Period> &since_epoch,
                       ::timespec &out) noexcept
{
    const std::int64_t ns = timeout_ns(since_epoch);
    if (ns < 0)
        return false;
    out.tv_sec = static_cast<std::time_t>(ns / 1000000000);
    out.tv_nsec = static_cast<long>(ns % 1000000000);
    return true;
}

template <class Duration>
void *get_until(::mempool *pool,
                const std::chrono::time_point<std::chrono::steady_clock, Duration> &deadline) noexcept
{
#if defined(__linux__)
    ::timespec at{};
    return ::mempool_get_until(pool, deadline_timespec(deadline.time_since_epoch(), at) ? &at
                                                                                         : nullptr);
#else
    // Elsewhere steady_clock need not be CLOCK_MONOTONIC: the time left,
    // measured now (never early: the call starts later). Compared first, so
    // that a deadline of time_point::min() cannot overflow the subtraction.
    const auto now = std::chrono::steady_clock::now();
    return ::mempool_get_timeout(pool, deadline <= now ? 0 : timeout_ns(deadline - now));
#endif
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
    [[nodiscard]] static pool create(const mempool_config &config, std::error_code &ec) noexcept
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
    [[nodiscard]] block get() { return or_throw(::mempool_get(pool_), "mempool_get"); }
    [[nodiscard]] block get(std::error_code &ec) noexcept
    {
        return checked(::mempool_get(pool_), ec);
    }

    /* Does not wait: an empty handle when no block is free. */
    [[nodiscard]] block try_get() { return or_empty(::mempool_try_get(pool_), "mempool_try_get"); }
    [[nodiscard]] block try_get(std::error_code &ec) noexcept
    {
        return checked(::mempool_try_get(pool_), ec);
    }

    /* Waits at most `timeout`: an empty handle when it expires. */
    template <class Rep, class Period>
    [[nodiscard]] block get_for(const std::chrono::duration<Rep, Period> &timeout)
    {
        return or_empty(::mempool_get_timeout(pool_, detail::timeout_ns(timeout)),
                        "mempool_get_timeout");
    }
    template <class Rep, class Period>
    [[nodiscard]] block get_for(const std::chrono::duration<Rep, Period> &timeout,
                                std::error_code &ec) noexcept
    {
        return checked(::mempool_get_timeout(pool_, detail::timeout_ns(timeout)), ec);
    }

    /* Waits until `deadline` at most: an empty handle when it passes. */
    template <class Duration>
    [[nodiscard]] block
    get_until(const std::chrono::time_point<std::chrono::steady_clock, Duration> &deadline)
    {
        return or_empty(detail::get_until(pool_, deadline), "mempool_get_until");
    }
    template <class Duration>
    [[nodiscard]] block
    get_until(const std::chrono::time_point<std::chrono::steady_clock, Duration> &deadline,
              std::error_code &ec) noexcept
    {
        return checked(detail::get_until(pool_, deadline), ec);
    }

    /* n blocks or none (mempool_get_bulk): on success n handles are written
     * through `out`, any output iterator of block (std::back_inserter of a
     * container of the caller's choice, or a block array: a span). Without
     * a timeout it waits as long as needed and throws for any failure; with
     * one it returns false when the blocks did not come in time. */
    template <class OutputIt>
    void get_bulk(std::size_t n, OutputIt out)
    {
        std::error_code ec;
        if (!bulk(n, out, -1, ec))
            throw std::system_error(ec, "mempool_get_bulk");
    }
    template <class OutputIt>
    [[nodiscard]] bool get_bulk(std::size_t n, OutputIt out, std::error_code &ec)
    {
        return bulk(n, out, -1, ec);
    }
    template <class OutputIt, class Rep, class Period>
    [[nodiscard]] bool get_bulk(std::size_t n, OutputIt out,
                                const std::chrono::duration<Rep, Period> &timeout)
    {
        std::error_code ec;
        if (bulk(n, out, detail::timeout_ns(timeout), ec))
            return true;
        if (!detail::is_no_block(ec))
            throw std::system_error(ec, "mempool_get_bulk");
        return false;
    }
    template <class OutputIt, class Rep, class Period>
    [[nodiscard]] bool get_bulk(std::size_t n, OutputIt out,
                                const std::chrono::duration<Rep, Period> &timeout,
                                std::error_code &ec)
    {
        return bulk(n, out, detail::timeout_ns(timeout), ec);
    }

    /* Puts back every non-empty handle of [first, last) at once, all or
     * nothing (mempool_put_bulk): on success the handles are empty; on
     * failure (EINVAL: a handle of another pool) they keep their blocks. */
    template <class ForwardIt>
    void put_bulk(ForwardIt first, ForwardIt last)
    {
        std::error_code ec;
        put_bulk(first, last, ec);
        if (ec)
            throw std::system_error(ec, "mempool_put_bulk");
    }
    template <class ForwardIt>
    void put_bulk(ForwardIt first, ForwardIt last, std::error_code &ec)
    {
        std::vector<void *> raw;
        try {
            for (ForwardIt it = first; it != last; ++it)
                if (*it)
                    raw.push_back(it->get());
        } catch (const std::bad_alloc &) {
            ec = detail::errno_code(ENOMEM);
            return;
        }
        int err = ::mempool_put_bulk(pool_, raw.data(), raw.size());
        ec = err ? detail::errno_code(err) : std::error_code();
        if (!err)
            for (; first != last; ++first)
                (void)first->release();
    }

    /* Takes ownership of a block obtained through native(). */
    [[nodiscard]] block adopt(void *raw) noexcept { return block(raw, block_deleter{pool_}); }

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

protected:
    /* Takes ownership of a C pool (NULL: an empty object). */
    explicit pool(::mempool *raw) noexcept : pool_(raw) {}

private:

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

    /* The bulk get behind every get_bulk. If writing a handle through `out`
     * throws, the blocks not written yet go back and the exception passes. */
    template <class OutputIt>
    bool bulk(std::size_t n, OutputIt &out, std::int64_t timeout_ns, std::error_code &ec)
    {
        std::vector<void *> raw;
        try {
            raw.resize(n);
        } catch (const std::bad_alloc &) {
            ec = detail::errno_code(ENOMEM);
            return false;
        }
        int err = ::mempool_get_bulk(pool_, raw.data(), n, timeout_ns);
        ec = err ? detail::errno_code(err) : std::error_code();
        if (err)
            return false;
        std::size_t written = 0;
        try {
            for (; written < n; written++) {
                block handle(raw[written], block_deleter{pool_});
                *out = std::move(handle);
                ++out;
            }
        } catch (...) {
            ::mempool_put_bulk(pool_, raw.data() + written + 1, n - written - 1);
            throw;
        }
        return true;
    }

    ::mempool *pool_;
};

/* A block in transit between processes (mempool_shm_give): a value to send
 * to another process, which turns it back into a block with
 * shared_pool::take. Empty (false) when default-constructed. */
class transit_handle {
public:
    constexpr transit_handle() noexcept = default;
    constexpr explicit transit_handle(std::uint64_t value) noexcept : value_(value) {}
    constexpr std::uint64_t value() const noexcept { return value_; }
    constexpr explicit operator bool() const noexcept { return value_ != 0; }
    friend constexpr bool operator==(transit_handle a, transit_handle b) noexcept
    {
        return a.value_ == b.value_;
    }
    friend constexpr bool operator!=(transit_handle a, transit_handle b) noexcept
    {
        return a.value_ != b.value_;
    }

private:
    std::uint64_t value_ = 0;
};

/* A pool shared by several processes (Linux; see mempool_shm_create(3)).
 * Everything a pool does, on the whole shared pool, plus attaching,
 * handing blocks between processes and recovery. Destruction detaches the
 * calling process: its blocks go back to the pool. */
class shared_pool : public pool {
public:
    /* Creates a shared pool: name "/name", or nullptr for an anonymous
     * segment; throws std::system_error. */
    [[nodiscard]] static shared_pool create(const char *name, const mempool_config &config,
                                            unsigned mode = 0)
    {
        return or_throw(::mempool_shm_create(name, &config, mode), "mempool_shm_create");
    }
    [[nodiscard]] static shared_pool create(const char *name, const mempool_config &config,
                                            unsigned mode, std::error_code &ec) noexcept
    {
        return checked(::mempool_shm_create(name, &config, mode), ec);
    }
    /* Attaches to an existing shared pool by name, or by a descriptor of its
     * segment (the caller keeps the descriptor). */
    [[nodiscard]] static shared_pool open(const char *name)
    {
        return or_throw(::mempool_shm_open(name), "mempool_shm_open");
    }
    [[nodiscard]] static shared_pool open(const char *name, std::error_code &ec) noexcept
    {
        return checked(::mempool_shm_open(name), ec);
    }
    [[nodiscard]] static shared_pool open_fd(int fd)
    {
        return or_throw(::mempool_shm_open_fd(fd), "mempool_shm_open_fd");
    }
    [[nodiscard]] static shared_pool open_fd(int fd, std::error_code &ec) noexcept
    {
        return checked(::mempool_shm_open_fd(fd), ec);
    }
    /* Removes a named segment's name. */
    static std::error_code unlink(const char *name) noexcept
    {
        int err = ::mempool_shm_unlink(name);
        return err ? detail::errno_code(err) : std::error_code();
    }

    /* The segment's descriptor, owned by the pool (dup it to keep it). */
    int fd() const noexcept { return ::mempool_shm_fd(native()); }

    /* Puts the block in transit and empties the handle: the result goes to
     * the process that takes it. Throws (the block stays) for EINVAL. */
    [[nodiscard]] transit_handle give(block &b)
    {
        std::error_code ec;
        transit_handle h = give(b, ec);
        if (ec)
            throw std::system_error(ec, "mempool_shm_give");
        return h;
    }
    [[nodiscard]] transit_handle give(block &b, std::error_code &ec) noexcept
    {
        std::uint64_t h = ::mempool_shm_give(native(), b.get());
        ec = h ? std::error_code() : detail::errno_code(errno);
        if (h)
            (void)b.release();
        return transit_handle(h);
    }
    /* Makes a block in transit ours: throws for ESTALE (taken already, put
     * or reclaimed) and EINVAL. */
    [[nodiscard]] block take(transit_handle h)
    {
        std::error_code ec;
        block b = take(h, ec);
        if (ec)
            throw std::system_error(ec, "mempool_shm_take");
        return b;
    }
    [[nodiscard]] block take(transit_handle h, std::error_code &ec) noexcept
    {
        void *raw = ::mempool_shm_take(native(), h.value());
        ec = raw ? std::error_code() : detail::errno_code(errno);
        return adopt(raw);
    }

    /* Returns what dead processes held (mempool_recover). */
    mempool_recovery recover(unsigned flags = 0)
    {
        std::error_code ec;
        mempool_recovery r = recover(flags, ec);
        if (ec)
            throw std::system_error(ec, "mempool_recover");
        return r;
    }
    mempool_recovery recover(unsigned flags, std::error_code &ec) noexcept
    {
        mempool_recovery r{};
        int err = ::mempool_recover(native(), flags, &r);
        ec = err ? detail::errno_code(err) : std::error_code();
        return r;
    }

private:
    explicit shared_pool(::mempool *raw) noexcept : pool(raw) {}

    static shared_pool checked(::mempool *raw, std::error_code &ec) noexcept
    {
        ec = raw ? std::error_code() : detail::errno_code(errno);
        return shared_pool(raw);
    }
    static shared_pool or_throw(::mempool *raw, const char *what)
    {
        if (!raw)
            throw std::system_error(detail::errno_code(errno), what);
        return shared_pool(raw);
    }
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

/* A pool of blocks, each holding one T while it is out. The queries and
 * the shutdown calls are those of mempoolxx::pool; the gets are makes. */
template <class T>
class object_pool : private pool {
public:
    using handle = std::unique_ptr<T, object_deleter<T>>;

    /* An arena pool of `capacity` blocks sized and aligned for T. */
    explicit object_pool(std::size_t capacity, unsigned flags = 0)
        : pool(capacity, sizeof(T), alignof(T), flags)
    {
    }

    /* The whole C configuration (capacity, cache_size, flags, on_misuse,
     * arg, init), in arena mode: block_size becomes sizeof(T) and the
     * alignment at least alignof(T). A config with `make` is refused with
     * EINVAL. Throws std::system_error. */
    explicit object_pool(const mempool_config &config) : pool(typed(config)) {}

    /* As the constructor, without throwing: empty on failure, ec says why. */
    [[nodiscard]] static object_pool create(const mempool_config &config,
                                            std::error_code &ec) noexcept
    {
        return object_pool(pool::create(typed(config), ec));
    }

    /* Waits for a block and constructs T(args...) in it. Throws
     * std::system_error (ECANCELED, ...) or what the constructor throws. */
    template <class... Args>
    [[nodiscard]] handle make(Args &&...args)
    {
        return construct(pool::get(), std::forward<Args>(args)...);
    }
    /* As make, reporting the pool's errors through ec (an empty handle);
     * only T's constructor can throw. */
    template <class... Args>
    [[nodiscard]] handle make(std::error_code &ec, Args &&...args)
    {
        return construct(pool::get(ec), std::forward<Args>(args)...);
    }

    /* Does not wait: an empty handle when no block is free. */
    template <class... Args>
    [[nodiscard]] handle try_make(Args &&...args)
    {
        return construct(pool::try_get(), std::forward<Args>(args)...);
    }
    template <class... Args>
    [[nodiscard]] handle try_make(std::error_code &ec, Args &&...args)
    {
        return construct(pool::try_get(ec), std::forward<Args>(args)...);
    }

    /* Waits at most `timeout`: an empty handle when it expires. */
    template <class Rep, class Period, class... Args>
    [[nodiscard]] handle make_for(const std::chrono::duration<Rep, Period> &timeout,
                                  Args &&...args)
    {
        return construct(pool::get_for(timeout), std::forward<Args>(args)...);
    }
    template <class Rep, class Period, class... Args>
    [[nodiscard]] handle make_for(const std::chrono::duration<Rep, Period> &timeout,
                                  std::error_code &ec, Args &&...args)
    {
        return construct(pool::get_for(timeout, ec), std::forward<Args>(args)...);
    }

    /* Waits until `deadline` at most: an empty handle when it passes. */
    template <class Duration, class... Args>
    [[nodiscard]] handle
    make_until(const std::chrono::time_point<std::chrono::steady_clock, Duration> &deadline,
               Args &&...args)
    {
        return construct(pool::get_until(deadline), std::forward<Args>(args)...);
    }
    template <class Duration, class... Args>
    [[nodiscard]] handle
    make_until(const std::chrono::time_point<std::chrono::steady_clock, Duration> &deadline,
               std::error_code &ec, Args &&...args)
    {
        return construct(pool::get_until(deadline, ec), std::forward<Args>(args)...);
    }

    using pool::native;
    using pool::operator bool;
    using pool::available;
    using pool::capacity;
    using pool::close;
    using pool::drain;
    using pool::drain_for;
    using pool::flush;
    using pool::index;
    using pool::owns;
    using pool::print_stats;
    using pool::reset_stats;
    using pool::stats;

private:
    explicit object_pool(pool &&untyped) noexcept : pool(std::move(untyped)) {}

    static mempool_config typed(mempool_config config) noexcept
    {
        config.block_size = sizeof(T);
        if (config.alignment < alignof(T))
            config.alignment = alignof(T);
        return config;
    }

    template <class... Args>
    handle construct(block memory, Args &&...args)
    {
        if (!memory)
            return handle(nullptr, object_deleter<T>{native()});
        /* If the constructor throws, `memory` still owns the block and puts it back. */
        T *object = ::new (memory.get()) T(std::forward<Args>(args)...);
        memory.release();
        return handle(object, object_deleter<T>{native()});
    }
};

} // namespace mempoolxx

#endif /* MEMPOOL_HPP */
