/* digits_large: the large int8 MLP digit classifier (weights from train_digits.py). */

#include "digits_large_weights.h"
#include "digits_mlp.h"
