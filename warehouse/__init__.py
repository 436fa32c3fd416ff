"""Storage and data: paths, the loan-book contract, the landing zone, dbt, publishing, simulation."""
