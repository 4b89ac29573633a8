// The latency percentiles every scenario keeps in its results' `latencyMs`, for distribution charts.
export const PERCENTILES = [50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 100];
