"""What leaves the program: the JSON report (a contract), HTML/PDF/XLSX/CSV documents,
the terminal summary, scorecards, charts, column labels, safe CSV, and `check`."""
