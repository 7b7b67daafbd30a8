"""The WASM VM AIR: proves one call of a lowered program (i32 core, value stack, calls)."""

from circuits.wasm_vm.air import VmAir, VmInputs
from circuits.wasm_vm.program import Export, VkFormatError, VmProgram, decode_vk
from circuits.wasm_vm.statement import StatementFormatError, VmStatement, decode_statement

__all__ = ["Export", "StatementFormatError", "VkFormatError", "VmAir", "VmInputs", "VmProgram",
           "VmStatement", "decode_statement", "decode_vk"]
