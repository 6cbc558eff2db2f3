#define FSOUT_VERSION "0.1.0"
