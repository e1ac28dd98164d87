// The classes start real processes against shared services on a 2-core machine; run one class at a time so that
// lease timings and "mid-item" moments are not at the mercy of another class's renders.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
