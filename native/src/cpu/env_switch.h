// The words that turn one of libcdas's environment switches off (CDAS_MKL_AMD_AVX512,
// CDAS_MALLOC_TUNING): 0, off, false or no, in any case. Anything else, the empty string included,
// leaves the switch on.
#pragma once

#include <cctype>

namespace cdas::cpu {

inline bool env_switch_off(const char* value) {
    if (value == nullptr) return false;
    for (const char* off : {"0", "off", "false", "no"}) {
        const char* a = value;
        const char* b = off;
        while (*a && *b && std::tolower(static_cast<unsigned char>(*a)) == *b) ++a, ++b;
        if (*a == '\0' && *b == '\0') return true;
    }
    return false;
}

}  // namespace cdas::cpu
