/* digits_small: the small int8 MLP digit classifier (weights from train_digits.py). */

#include "digits_small_weights.h"
#include "digits_mlp.h"
