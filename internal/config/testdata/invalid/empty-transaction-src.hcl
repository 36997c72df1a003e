# want: 2:19 transaction_src must not be empty
transaction_src = ""
