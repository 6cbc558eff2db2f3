// A back end's answer: a value, or a native errno. Failures are values, not
// exceptions; the session turns them into canonical error replies in one place.
#pragma once

#include <utility>
#include <variant>

namespace fsout {

struct Errno {
  int value;
};

template <class T>
class Result {
 public:
  Result(T value) : state_(std::move(value)) {}  // NOLINT: implicit on purpose
  Result(Errno error) : state_(error) {}         // NOLINT
  bool ok() const { return state_.index() == 0; }
  int error() const { return std::get<1>(state_).value; }
  T& value() { return std::get<0>(state_); }
  const T& value() const { return std::get<0>(state_); }

 private:
  std::variant<T, Errno> state_;
};

}  // namespace fsout
