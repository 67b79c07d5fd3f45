"""What starfund publishes and reports, as plain data first and documents second, so the
command line and the portal show the same figures from one implementation:

- `lists`: applications, societies and experts as rows (filters in SQL, one query each);
- `figures`: a call's, a year's and a society's figures (`report_data`, `year_data`,
  `society_data`), and the multi-year tables the demo prints;
- `charts`: those figures as inline SVG (`svg_*(data) -> str`, matplotlib's SVG backend);
- `documents`: the public notice (公示), the award list (立项名单), a society's payment
  statement and the report, as HTML, XLSX and PDF (WeasyPrint), in Chinese or English.
"""
