// Scratch memory a context reuses between calls; it only grows, and remembers its high-water
// mark for cdas_context_peak_workspace_bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace cdas::cpu {

class workspace {
public:
    workspace() = default;
    ~workspace() { std::free(data_); }
    workspace(const workspace&) = delete;
    workspace& operator=(const workspace&) = delete;

    // At least `bytes` of 64-byte aligned memory, valid until the next call; contents undefined.
    // Throws std::bad_alloc.
    void* reserve(size_t bytes) {
        if (bytes > capacity_) {
            std::free(data_);
            data_ = nullptr;
            capacity_ = 0;
            size_t rounded = (bytes + 63) / 64 * 64;
            data_ = std::aligned_alloc(64, rounded);
            if (!data_) throw std::bad_alloc();
            capacity_ = rounded;
            if (int64_t(capacity_) > peak_) peak_ = int64_t(capacity_);
        }
        return data_;
    }

    int64_t peak_bytes() const { return peak_; }

private:
    void* data_ = nullptr;
    size_t capacity_ = 0;
    int64_t peak_ = 0;
};

// Hands out consecutive 64-byte aligned float arrays from one reservation. Layout first
// (count pass), then bind: the same sequence of take() calls both times.
class workspace_carver {
public:
    explicit workspace_carver(char* base = nullptr) : base_(base) {}
    float* take(int64_t floats) {
        size_t bytes = (size_t(floats) * 4 + 63) / 64 * 64;
        float* p = base_ ? reinterpret_cast<float*>(base_ + used_) : nullptr;
        used_ += bytes;
        return p;
    }
    size_t used() const { return used_; }

private:
    char* base_;
    size_t used_ = 0;
};

}  // namespace cdas::cpu
