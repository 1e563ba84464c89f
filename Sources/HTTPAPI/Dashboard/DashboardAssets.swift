/// The browser dashboard's files, embedded in the binary so that the coordinator serves them
/// with nothing to install and nothing fetched from elsewhere (works offline).
enum DashboardAssets {}
