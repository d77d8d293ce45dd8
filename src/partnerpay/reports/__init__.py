"""Reports: daily rollups of tracking and money figures, dashboard series, and the weekly report email."""
