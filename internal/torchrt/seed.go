package torchrt

/*
#include <stdint.h>
// Defined in gotch's libtch (torch_api.cpp), which every binary that uses
// tensors links; gotch v0.9.1 has no Go wrapper for it.
void at_manual_seed(int64_t seed);
*/
import "C"

// ManualSeed seeds libtorch's global generators (CPU, and CUDA when
// present), as torch.manual_seed does: random init, dropout, randn.
func ManualSeed(seed int64) { C.at_manual_seed(C.int64_t(seed)) }
