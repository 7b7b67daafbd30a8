/* digits_small_dot: the small int8 MLP digit classifier on memjit's precompiles (memjit.h). */

#include "digits_small_weights.h"
#include "digits_mlp_dot.h"
