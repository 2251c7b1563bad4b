package metrics

import "flag"

// JarVars defines --meteor-jar and --spice-jar, the Java metrics' jars
// (Options.MeteorJar, Options.SpiceJar), for score and eval alike.
func JarVars(fs *flag.FlagSet, meteor, spice *string) {
	fs.StringVar(meteor, "meteor-jar", "", "pycocoevalcap's meteor-1.5.jar (with its data/ directory)")
	fs.StringVar(spice, "spice-jar", "", "pycocoevalcap's spice-1.0.jar (with its lib/ directory)")
}

// ScoreFiles scores a COCO results file against a COCO captions file
// (LoadResults, LoadAnnotations, Score).
func ScoreFiles(results, annotations string, o Options) (*Report, error) {
	res, err := LoadResults(results)
	if err != nil {
		return nil, err
	}
	ann, err := LoadAnnotations(annotations)
	if err != nil {
		return nil, err
	}
	return Score(res, ann, o)
}
