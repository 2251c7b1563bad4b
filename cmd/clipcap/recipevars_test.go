package main

import "strings"

// recipeVars stands in for what the schedulers substitute at run time (the
// extract recipes' own test, beside the flags, is extract/recipes_test.go).
var recipeVars = strings.NewReplacer("$(JOB_COMPLETION_INDEX)", "2", "$SLURM_ARRAY_TASK_ID", "2",
	"$SLURM_CPUS_PER_TASK", "8", "$DATA", "/data", "$N", "4", `"`, "")
