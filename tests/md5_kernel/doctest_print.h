// How doctest prints the values of this folder's types in failed checks.
#pragma once

#include <doctest/doctest.h>

#include "tests/md5_kernel/kernel_side.h"

namespace doctest {

template <>
struct StringMaker<tapstack::md5kernel::Md5Counters> {
  static String convert(const tapstack::md5kernel::Md5Counters& counters) {
    return counters.to_string().c_str();
  }
};

}  // namespace doctest
