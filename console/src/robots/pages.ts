// The robot pages, loaded on first visit: chat-only users never fetch uPlot.
export { RobotList } from './RobotList.js';
export { RobotPage } from './RobotPage.js';
