/** The package version, in one place that loads nothing else. */
export const VERSION = '0.1.0';
