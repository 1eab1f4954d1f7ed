"""Every component id of the UI in one place (the browser script and tests use them too)."""

# shell
URL = "ril-url"
MESSAGE = "ril-message"
PRELOAD = "plotly-preload"
PRELOAD_TIMER = "plotly-preload-timer"

# project viewer
GRID = "series-grid"
SEARCH = "series-search"
FOLDERS = "folder-tree"
FOLDER_STORE = "folder-selected"
FOLDER_FILTER = "folder-filter"
SERIES_COUNT = "series-count"
PROJECT_ERRORS = "project-errors"

# slice viewer
VIEWER_GRAPH = "viewer-graph"
VIEWER_META = "viewer-meta"
VIEWER_STATE = "viewer-state"
VIEWER_TITLE = "viewer-title"
VIEWER_POSITION = "viewer-position"
VIEWER_READOUT = "viewer-readout"
VIEWER_ERROR = "viewer-error"
VIEWER_WARNINGS = "viewer-warnings"
SLICE_SLIDER = "slice-slider"
PLANE = "plane-select"
FRAME = "frame-slider"
FRAME_BOX = "frame-box"
WINDOW_PRESET = "window-preset"
WINDOW_CENTER = "window-center"
WINDOW_WIDTH = "window-width"
ZOOM_RESET = "zoom-reset"
