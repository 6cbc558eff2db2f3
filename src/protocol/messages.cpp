#include "protocol/messages.h"

namespace fsout::protocol {

const char* opcode_name(uint16_t opcode) {
  switch (opcode) {
#define FSOUT_NAME(number, name, request, reply) \
  case number:                                   \
    return #name;
    FSOUT_OPERATIONS(FSOUT_NAME)
#undef FSOUT_NAME
  }
  return nullptr;
}

bool is_known_opcode(uint16_t opcode) { return opcode_name(opcode) != nullptr; }

}  // namespace fsout::protocol
