# want: 2:30 "10.0.0.0/33" is neither
allow_cidrs = ["10.0.0.0/8", "10.0.0.0/33"]
